// views/mapping-history.js: the history section of the Mapping page: every version
// kept (0 is the shipped default), a rollback to any of them (confirmed by a second
// click), and the differences between two versions.

import { get, post } from '../api.js';
import {
  h, alertArea, compact, replace, table, time, action, options, confirmButton, breakable,
} from '../dom.js';

export function historySection(ctx) {
  const alert = alertArea('history-error');
  const entries = ctx.history.data || [];
  const confirms = [];

  const rows = entries.slice().reverse().map((entry) => {
    const isCurrent = entry.version === ctx.version;
    const targets = ((entry.overrides && entry.overrides.overrides) || []).map((o) => o.target);
    const rollback = isCurrent
      ? h('span', { class: 'badge origin-override' }, 'current')
      : confirmButton({ class: 'rollback small secondary' }, `Roll back to v${entry.version}`,
        `Confirm rollback to v${entry.version}`, action(() => rollbackTo(entry.version), alert), confirms);
    return h('tr', { 'data-version': String(entry.version), class: isCurrent ? 'current' : null },
      h('td', null, entry.version === 0 ? `0 (shipped default)` : String(entry.version)),
      h('td', null, entry.author ? h('code', null, entry.author) : '—'),
      h('td', null, time(entry.created_at)),
      h('td', null, entry.rollback_of === null || entry.rollback_of === undefined ? '—' : `v${entry.rollback_of}`),
      h('td', { class: 'small' },
        targets.length ? targets.map((t, i) => [i ? ', ' : '', h('code', null, breakable(t))]) : h('span', { class: 'muted' }, 'no overrides'),
        entry.plugins && entry.plugins.length ? ` · ${entry.plugins.length} plugin${entry.plugins.length === 1 ? '' : 's'}` : ''),
      h('td', { class: 'actions' }, rollback));
  });

  async function rollbackTo(version) {
    const answer = await post(`${ctx.base}/rollback`, { version });
    ctx.session.flash = `Rolled back to version ${version} (saved as version ${answer.version}).`;
    await ctx.reload();
  }

  // The diff between two versions.
  const versions = entries.map((e) => [String(e.version), e.version === 0 ? '0 (shipped default)' : String(e.version)]);
  const last = entries.length ? entries[entries.length - 1].version : 0;
  const previous = entries.length > 1 ? entries[entries.length - 2].version : last;
  const from = h('select', { id: 'diff-from' }, options(versions, String(previous)));
  const to = h('select', { id: 'diff-to' }, options(versions, String(last)));
  const output = h('div', { id: 'diff', 'aria-live': 'polite' });
  const show = h('button', { type: 'button', id: 'show-diff', class: 'secondary' }, 'Show differences');
  show.addEventListener('click', action(async () => {
    const answer = await get(`${ctx.base}/diff?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`);
    drawDiff(output, answer);
  }, alert, show));

  return h('section', { class: 'card history', 'aria-labelledby': 'history-title' },
    h('h2', { id: 'history-title' }, 'History'),
    ctx.history.pruned_before !== null && ctx.history.pruned_before !== undefined
      ? h('p', { class: 'hint' }, `Versions before ${ctx.history.pruned_before} were pruned (version 0 is always kept).`) : null,
    alert,
    table({ id: 'history' }, ['Version', 'Author', 'Time', 'Rollback of', 'Overrides', ''], rows),
    h('h3', null, 'Compare two versions'),
    h('div', { class: 'row diff-controls' },
      h('div', { class: 'field' }, h('label', { for: 'diff-from' }, 'From'), from),
      h('div', { class: 'field' }, h('label', { for: 'diff-to' }, 'To'), to),
      show),
    output);
}

function drawDiff(output, answer) {
  const changes = answer.changes || [];
  if (changes.length === 0) {
    replace(output, h('p', { class: 'empty' }, `No differences between version ${answer.from} and version ${answer.to}.`));
    return;
  }
  const value = (v) => (v === null || v === undefined ? h('span', { class: 'muted' }, 'none') : h('code', null, compact(v)));
  replace(output,
    h('p', null, `From version ${answer.from} to version ${answer.to}:`),
    h('ul', { class: 'diff-list' }, changes.map((c) => h('li', {
      'data-target': c.target || null, 'data-part': c.part,
    },
    h('strong', null, c.part === 'override' ? h('code', null, c.target) : c.part),
    h('div', { class: 'diff-row' }, h('span', { class: 'label' }, 'before'), value(c.before)),
    h('div', { class: 'diff-row' }, h('span', { class: 'label' }, 'after'), value(c.after))))));
}
