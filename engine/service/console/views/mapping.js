// views/mapping.js: the Mapping page (#/connections/ID/mapping/ENTITY).
//
// It shows the connection's resolved mapping of one entity as a table of rules, lets a
// person stage changes to it (through the rule editor, views/mapping-editor.js, with a
// sample record from views/mapping-sample.js), preview them on the sample, and save
// them as a new version; views/mapping-history.js holds the versions, rollback and diff.
//
// The override document being built is the current version's overrides (the last
// entry of the history) with the staged entries applied by target: a change replaces
// or adds the target's entry, a restore removes it. Staged changes and the sample are
// kept per connection and entity for the browser session, across page loads.

import { request, get, post, seg, ifMatch, etagVersion, ENTITY_LABELS } from '../api.js';
import {
  h, alertArea, statusArea, badge, compact, copy, replace, table, action, field, breakable, withCode,
} from '../dom.js';
import { valueTree, recordPath } from '../tree.js';
import {
  connection, mappedEntities, modelSchema, fieldInfo, connectionHeader, connectionHref,
} from './common.js';
import { createEditor, problemText } from './mapping-editor.js';
import { createSample } from './mapping-sample.js';
import { historySection } from './mapping-history.js';

/** What outlives a page load, per connection and entity. */
const sessions = new Map();

function sessionFor(id, entity) {
  const key = `${id}/${entity}`;
  if (!sessions.has(key)) sessions.set(key, { staged: new Map(), sample: undefined, records: null, index: 0, source: null, pasted: '', flash: null, flashError: null });
  return sessions.get(key);
}

export async function render(page, id, entity) {
  const conn = await connection(id);
  const entities = await mappedEntities(conn);
  if (entities.length === 0) {
    replace(page, connectionHeader(conn, 'mapping', entities),
      h('p', { class: 'empty' }, `The ${conn.system} system maps no entity.`));
    return;
  }
  if (!entity) {
    location.replace(connectionHref(id, 'mapping', entities[0]));
    return;
  }
  document.title = `${ENTITY_LABELS[entity] || entity} mapping · ${conn.name} · Crosswalk console`;
  if (!entities.includes(entity)) {
    replace(page, connectionHeader(conn, 'mapping', entities),
      h('p', { class: 'alert', role: 'alert' }, `${conn.system} does not map ${entity}. `,
        h('a', { href: connectionHref(id, 'mapping', entities[0]) }, `Open ${entities[0]} instead.`)));
    return;
  }
  const base = `/v1/connections/${seg(id)}/mappings/${entity}`;
  const [answer, history, schema] = await Promise.all([
    request('GET', base),
    get(`${base}/history`),
    modelSchema(entity).catch(() => null),
  ]);
  const session = sessionFor(id, entity);
  const ctx = buildContext(page, conn, entity, entities, base, answer, history, schema, session);
  drawPage(ctx);
}

/** The page's shared state and the operations its parts call. */
function buildContext(page, conn, entity, entities, base, answer, history, schema, session) {
  const mapping = answer.data;
  const version = etagVersion(answer.headers) ?? mapping.version;
  const entries = history.data || [];
  const current = entries.find((e) => e.version === version) || entries[entries.length - 1];
  const rules = new Map();
  flatten(mapping.mapping.rules || [], '', 0, rules);
  const ctx = {
    page, conn, entity, entities, base, mapping, version, history, schema, session,
    doc: normalizeDoc(current ? current.overrides : null),
    rules,
    readOnly: new Map((mapping.read_only || []).map((r) => [r.target, r.reason])),
    staged: session.staged,
    problems: [],
    status: statusArea('status'),
    alert: alertArea('mapping-error'),
  };
  /** The committed override entry of a target, or undefined. */
  ctx.committedEntry = (target) => ctx.doc.overrides.find((e) => e.target === target);
  /** The entry a target would have after saving: staged, committed, or undefined. */
  ctx.proposedEntry = (target) => {
    const change = ctx.staged.get(target);
    if (change) return change.kind === 'restore' ? undefined : change.entry;
    return ctx.committedEntry(target);
  };
  ctx.buildDocument = () => buildDocument(ctx);
  ctx.stage = (target, change) => {
    ctx.staged.set(target, change);
    ctx.problems = ctx.problems.filter((p) => p.target !== target);
    ctx.refresh();
  };
  ctx.unstage = (target) => {
    ctx.staged.delete(target);
    ctx.refresh();
  };
  ctx.sample = () => session.sample;
  ctx.reload = () => render(page, conn.id, entity);
  ctx.fieldInfo = (target) => fieldInfo(schema, target);
  return ctx;
}

/** Rules as a flat map, by dotted target: `{target, rule, depth}`; nested rules follow their parent. */
function flatten(rules, prefix, depth, out) {
  for (const rule of rules) {
    const target = prefix ? `${prefix}.${rule.target}` : rule.target;
    out.set(target, { target, rule, depth });
    if (Array.isArray(rule.rules)) flatten(rule.rules, target, depth + 1, out);
  }
}

/** An override document with an `overrides` list. */
function normalizeDoc(doc) {
  const out = copy(doc) || {};
  if (!Array.isArray(out.overrides)) out.overrides = [];
  return out;
}

/** The current overrides with the staged changes applied. */
function buildDocument(ctx) {
  const doc = copy(ctx.doc);
  for (const [target, change] of ctx.staged) {
    const at = doc.overrides.findIndex((e) => e.target === target);
    if (change.kind === 'restore') {
      if (at >= 0) doc.overrides.splice(at, 1);
    } else if (at >= 0) {
      doc.overrides[at] = copy(change.entry);
    } else {
      doc.overrides.push(copy(change.entry));
    }
  }
  return doc;
}

/** Draws the whole page from `ctx`. */
function drawPage(ctx) {
  const { page, conn, entity, entities, session } = ctx;
  const rulesTable = table({ id: 'rules' },
    ['Target', 'Model type', 'Source', 'Transforms', 'Default', 'Origin', 'Writes', ''], []);
  ctx.rulesBody = rulesTable.querySelector('tbody');
  ctx.stagedList = h('ul', { id: 'staged', class: 'staged-list' });
  ctx.stagedEmpty = h('p', { class: 'empty' }, 'No staged changes. Edit a rule, or add a custom field, to stage one.');
  ctx.problemsBox = h('div', { id: 'problems', role: 'alert', class: 'alert', hidden: true });
  ctx.previewPane = h('section', { id: 'preview-pane', class: 'card', hidden: true, 'aria-labelledby': 'preview-title' });

  const sampler = createSample(ctx);
  const editor = createEditor(ctx, sampler);
  ctx.editor = editor;
  sampler.onPick((segments) => editor.pick(segments));
  sampler.onChange(() => editor.sampleChanged());

  ctx.refresh = () => {
    drawRules(ctx);
    drawStaged(ctx);
    editor.refresh();
  };

  // What the last save or rollback said, shown by the buttons it came from.
  const flashed = session.flash ? ctx.status : session.flashError ? ctx.alert : null;
  if (session.flash) ctx.status.text(session.flash);
  if (session.flashError) ctx.alert.text(session.flashError);
  session.flash = null;
  session.flashError = null;

  const previewButton = h('button', { type: 'button', id: 'preview', class: 'secondary' }, 'Preview on the sample');
  previewButton.addEventListener('click', action(() => preview(ctx), ctx.alert, previewButton));
  const saveButton = h('button', { type: 'button', id: 'save' }, 'Save as a new version');
  saveButton.addEventListener('click', action(() => save(ctx), ctx.alert, saveButton));
  const discard = h('button', {
    type: 'button', id: 'discard', class: 'secondary',
    onclick: () => {
      ctx.staged.clear();
      ctx.problems = [];
      showProblems(ctx);
    },
  }, 'Discard staged changes');

  const writeRefused = ctx.mapping.write_refused
    ? h('p', { class: 'alert warn' }, `Writes of this entity are refused: ${ctx.mapping.write_refused}`) : null;

  replace(page,
    connectionHeader(conn, 'mapping', entities, entity),
    h('p', { class: 'meta' }, `Editing version ${ctx.version}`,
      ctx.version === 0 ? ' (the shipped default)' : '', ` of the ${entity} mapping of ${ctx.mapping.mapping.system}.`),
    writeRefused,
    h('div', { class: 'panes' },
      h('div', { class: 'pane-main' },
        h('section', { class: 'rules', 'aria-labelledby': 'rules-title' },
          h('h2', { id: 'rules-title' }, 'Rules'),
          rulesTable,
          customFieldForm(ctx)),
        h('section', { class: 'card', 'aria-labelledby': 'staged-title' },
          h('h2', { id: 'staged-title' }, 'Staged changes'),
          ctx.stagedEmpty, ctx.stagedList, ctx.problemsBox,
          h('div', { class: 'buttons' }, previewButton, saveButton, discard),
          ctx.status, ctx.alert),
        ctx.previewPane,
        historySection(ctx)),
      h('aside', { class: 'pane-side', 'aria-label': 'Rule editor and sample' },
        editor.element, sampler.element)));
  ctx.refresh();
  sampler.start();
  if (flashed) flashed.scrollIntoView({ block: 'nearest' });
}

/** The rules table's rows: every resolved rule, then staged targets the mapping does not have yet. */
function drawRules(ctx) {
  const rows = [...ctx.rules.values()].map((flat) => ruleRow(ctx, flat));
  for (const [target, change] of ctx.staged) {
    if (!ctx.rules.has(target)) {
      const origin = target.startsWith('custom_fields.') ? 'custom' : 'override';
      rows.push(ruleRow(ctx, { target, rule: { target, origin }, depth: 0, added: change }));
    }
  }
  replace(ctx.rulesBody, rows);
}

/** A transform chain, compactly: `to_number → divide(by_path: $.X) → round(2)`. */
function transformsText(steps) {
  if (!Array.isArray(steps) || steps.length === 0) return '';
  return steps.map(stepText).join(' → ');
}

function stepText(step) {
  if (typeof step === 'string') return step;
  if (step && typeof step === 'object') {
    if (step.plugin) return `${step.plugin}.${step.function}(${step.args ? compact(step.args) : ''})`;
    const [name] = Object.keys(step);
    const args = step[name];
    if (args && typeof args === 'object' && !Array.isArray(args)) {
      return `${name}(${Object.entries(args).map(([k, v]) => `${k}: ${argText(v)}`).join(', ')})`;
    }
    return `${name}(${argText(args)})`;
  }
  return compact(step);
}

/** An argument, short: a large object or list is summed up by its size (`{…7}`). */
function argText(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.length <= 3 ? compact(value) : `[…${value.length}]`;
  if (value && typeof value === 'object') {
    const size = Object.keys(value).length;
    return size <= 2 ? compact(value) : `{…${size}}`;
  }
  return compact(value);
}

/** A rule's source as people read it. */
function sourceCell(rule, isParent) {
  if (rule.disable || rule.disabled) return h('span', { class: 'badge muted-badge' }, 'disabled');
  if (rule.path !== undefined && rule.path !== null) return h('code', null, breakable(rule.path));
  if (rule.const !== undefined) return h('span', null, 'constant ', h('code', null, compact(rule.const)));
  if (Array.isArray(rule.coalesce)) {
    return h('span', null, 'first of ', rule.coalesce.map((p, i) => [i ? ', ' : '', h('code', null, breakable(p))]));
  }
  return h('span', { class: 'muted' }, isParent ? 'the record itself' : '—');
}

/** One row of the rules table. */
function ruleRow(ctx, flat) {
  const { target, depth } = flat;
  const change = ctx.staged.get(target);
  // What the row shows: the resolved rule, with a staged entry's keys over it.
  let rule = flat.rule;
  if (change && change.kind !== 'restore') {
    rule = { ...rule, ...change.entry };
    delete rule.disabled;
    if (change.entry.path !== undefined) { delete rule.const; delete rule.coalesce; }
  }
  const isParent = Array.isArray(flat.rule.rules);
  const info = ctx.fieldInfo(target);
  const problems = ctx.problems.filter((p) => p.target === target);
  const stagedTag = change ? h('span', { class: 'badge staged-badge' },
    { set: 'staged change', disable: 'staged: disable', restore: 'staged: restore default' }[change.kind]) : null;
  const readOnly = ctx.readOnly.get(target);
  const edit = h('button', {
    type: 'button', class: 'edit small secondary', 'aria-label': `Edit ${target}`,
    onclick: () => ctx.editor.open(target),
  }, 'Edit');
  const classes = [depth ? `nested depth-${Math.min(depth, 3)}` : '', change ? 'staged' : '', problems.length ? 'has-error' : '']
    .filter(Boolean).join(' ');
  return h('tr', { 'data-target': target, class: classes || null },
    h('td', { class: 'target' },
      h('code', null, breakable(target)), stagedTag ? [' ', stagedTag] : null,
      problems.map((p) => h('div', { class: 'rule-error' }, problemText(p)))),
    h('td', { class: 'type', title: info ? typeTitle(info) : null },
      info ? info.type : h('span', { class: 'muted' }, '—'),
      (info && info.required) || rule.required ? [' ', h('span', { class: 'required', title: info && info.required ? 'required by the model' : 'required by the rule' }, 'required')] : null),
    h('td', { class: 'source' }, sourceCell(rule, isParent)),
    h('td', { class: 'transforms' }, rule.transforms && rule.transforms.length
      ? h('code', { class: 'chain', title: compact(rule.transforms) }, transformsText(rule.transforms)) : null),
    h('td', { class: 'default' }, rule.default !== undefined && rule.default !== null ? h('code', null, compact(rule.default)) : null),
    h('td', { class: 'origin' }, badge(rule.origin || 'default', `origin-${rule.origin || 'default'}`)),
    h('td', { class: 'writes' },
      readOnly ? h('span', { class: 'read-only' }, 'read-only: ', withCode(readOnly)) : null,
      rule.write ? h('div', { class: 'small' }, 'written to ', h('code', null, rule.write.path)) : null),
    h('td', { class: 'actions' }, edit));
}

/** The model's description of a field, and an enum's members. */
function typeTitle(info) {
  const members = info.members ? `One of: ${info.members.join(', ')}.` : '';
  return [info.description, members].filter(Boolean).join(' ') || null;
}

/** The staged changes list. */
function drawStaged(ctx) {
  const items = [...ctx.staged].map(([target, change]) => {
    let what;
    if (change.kind === 'restore') what = 'back to the default (its override is removed)';
    else if (change.kind === 'disable') what = 'disabled (maps to null)';
    else what = compact(withoutTarget(change.entry));
    return h('li', { 'data-target': target },
      h('code', null, target), ': ', h('span', { class: 'change' }, what), ' ',
      h('button', {
        type: 'button', class: 'remove small secondary', 'aria-label': `Remove the staged change of ${target}`,
        onclick: () => ctx.unstage(target),
      }, 'Remove'));
  });
  replace(ctx.stagedList, items);
  ctx.stagedEmpty.hidden = items.length > 0;
}

function withoutTarget(entry) {
  const { target, ...rest } = entry;
  return Object.keys(rest).length ? rest : '(no change yet: give it a source)';
}

/** The field for a new custom field's name and its button. */
function customFieldForm(ctx) {
  const name = h('input', { id: 'custom-name', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'cost_center' });
  const message = h('p', { class: 'error-text', role: 'alert' });
  const add = () => {
    const value = name.value.trim().replace(/^custom_fields\./, '');
    if (!/^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(value)) {
      message.textContent = 'A custom field name is letters, digits, "_" and "-", such as cost_center.';
      return;
    }
    message.textContent = '';
    const target = `custom_fields.${value}`;
    if (!ctx.rules.has(target) && !ctx.staged.has(target)) {
      ctx.stage(target, { kind: 'set', entry: { target } });
    }
    name.value = '';
    ctx.editor.open(target);
  };
  name.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      add();
    }
  });
  return h('div', { class: 'custom-field' },
    field('Add a custom field: custom_fields.', name),
    h('button', { type: 'button', id: 'add-custom', class: 'secondary', onclick: add }, 'Add custom field'),
    message);
}

/** The problems of a 422 `invalid_mapping`: `[{message, target, position}]`. */
function problemsOf(error) {
  const details = error.details || {};
  const messages = Array.isArray(details.problems) ? details.problems : [error.message];
  const targets = Array.isArray(details.targets) ? details.targets : [];
  return messages.map((message, i) => {
    const at = targets[i] || {};
    let target = at.target ?? null;
    if (!target) {
      const named = /target `([^`]+)`/.exec(message);
      if (named) target = named[1];
    }
    return { message, target, position: at.position ?? null };
  });
}

/** Shows `ctx.problems` in #problems, on their rows, and in the editor. */
function showProblems(ctx) {
  const box = ctx.problemsBox;
  if (ctx.problems.length === 0) {
    box.hidden = true;
    box.replaceChildren();
  } else {
    replace(box,
      h('p', null, ctx.problems.length === 1 ? 'The service found a problem; nothing was applied:' : `The service found ${ctx.problems.length} problems; nothing was applied:`),
      h('ul', null, ctx.problems.map((p) => h('li', { 'data-target': p.target || null },
        p.target ? [h('code', null, p.target), ' — '] : null, problemText(p)))));
    box.hidden = false;
  }
  ctx.refresh();
}

/** Handles an error of preview or save: a 422 `invalid_mapping` lists its problems. */
function failed(ctx, error) {
  if (error.status === 422 && (error.code === 'invalid_mapping' || (error.details && error.details.problems))) {
    ctx.problems = problemsOf(error);
    showProblems(ctx);
    return;
  }
  throw error;
}

/** Runs the proposed document on the sample and shows both outputs side by side. */
async function preview(ctx) {
  ctx.status.clear();
  const sample = ctx.sample();
  if (sample === undefined) {
    ctx.alert.text('Load a sample record first (in the Sample record panel): the preview maps it with the current and the proposed mapping.');
    return;
  }
  let answer;
  try {
    answer = await post(`${ctx.base}/preview`, { overrides: ctx.buildDocument(), payload: sample });
  } catch (error) {
    failed(ctx, error);
    return;
  }
  ctx.problems = [];
  showProblems(ctx);
  drawPreview(ctx, answer);
}

function drawPreview(ctx, answer) {
  const changes = answer.changes || [];
  const changed = new Set(changes.map((c) => recordPath(c.path)));
  const column = (title, records) => h('section', { class: 'preview-col' },
    h('h3', null, title),
    valueTree(Array.isArray(records) && records.length === 1 ? records[0] : records, changed));
  const list = h('ul', { id: 'preview-changes' }, changes.map((c) => h('li', { 'data-path': recordPath(c.path) },
    h('code', null, recordPath(c.path) || '(the record)'), ': ',
    h('code', { class: 'before' }, compact(c.before)), ' → ', h('code', { class: 'after' }, compact(c.after)))));
  replace(ctx.previewPane,
    h('h2', { id: 'preview-title' }, 'Preview'),
    h('p', { class: 'meta' }, `The sample record through version ${answer.current_version} (current) and through the staged changes (proposed). Nothing is saved.`),
    changes.length === 0
      ? h('p', { class: 'empty' }, 'No differences: the proposed mapping gives the same record.')
      : h('p', null, changes.length === 1 ? '1 field changes:' : `${changes.length} fields change:`),
    list,
    h('div', { class: 'preview-cols' }, column('Current', answer.current_output), column('Proposed', answer.output)));
  ctx.previewPane.hidden = false;
  ctx.previewPane.scrollIntoView({ block: 'nearest' });
}

/** Saves the document as a new version, on the version being edited (`If-Match`). */
async function save(ctx) {
  ctx.status.clear();
  if (ctx.staged.size === 0) {
    ctx.status.text('Nothing is staged: there is nothing to save.');
    return;
  }
  let answer;
  try {
    answer = (await request('PUT', ctx.base, { body: ctx.buildDocument(), headers: ifMatch(ctx.version) })).data;
  } catch (error) {
    if (error.status === 412) {
      ctx.session.flashError = `Someone else changed this mapping after you opened version ${ctx.version}, so nothing was saved (${error.message}). The page now shows the latest version; your staged changes are kept: review them, preview, and save again.`;
      await ctx.reload();
      return;
    }
    failed(ctx, error);
    return;
  }
  ctx.staged.clear();
  ctx.session.flash = `Saved version ${answer.version} — effective on the next request.`;
  await ctx.reload();
}
