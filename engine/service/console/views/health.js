// views/health.js: the Health page of a connection (#/connections/ID/health): its
// status (breaker, rate limit, last success and error, counts per kind and entity),
// its error log filtered by kind, and new credentials for a live connection.

import { get, post, seg } from '../api.js';
import {
  h, alertArea, statusArea, statusBadge, badge, field, options, replace, table, time, action, parseJson,
} from '../dom.js';
import { connection, mappedEntities, connectionHeader, entityOptions, forget } from './common.js';

/** The kinds of the error log (`ErrorKind` in the API). */
const KINDS = ['auth', 'permission', 'rate_limit', 'timeout', 'network', 'upstream_5xx', 'bad_response', 'mapping', 'plugin', 'rejected'];

/** The breaker's states as people read them. */
const BREAKER_WORDS = {
  closed: 'closed: calls go through',
  open: 'open: calls fail fast until a probe succeeds',
  half_open: 'half open: one probe call is let through',
};

export async function render(page, id) {
  const conn = await connection(id);
  const entities = await mappedEntities(conn);
  document.title = `Health · ${conn.name} · Crosswalk console`;
  const statusBox = h('section', { class: 'card', 'aria-labelledby': 'health-title' });
  const statusAlert = alertArea('health-error');
  const base = `/v1/connections/${seg(id)}`;

  const loadStatus = async () => {
    statusAlert.clear();
    try {
      drawStatus(statusBox, await get(`${base}/status`), refresh);
    } catch (error) {
      replace(statusBox, h('h2', { id: 'health-title' }, 'Status'), statusAlert);
      statusAlert.show(error);
    }
  };
  const refresh = h('button', { type: 'button', id: 'refresh-health', class: 'secondary small' }, 'Refresh');
  refresh.addEventListener('click', action(async () => {
    await Promise.all([loadStatus(), loadErrors()]);
  }, statusAlert, refresh));

  // The error log.
  const logAlert = alertArea('errors-error');
  const kind = h('select', { id: 'error-kind' }, options([['', 'All kinds'], ...KINDS.map((k) => [k, k])], ''));
  const entity = h('select', { id: 'error-entity' }, h('option', { value: '' }, 'All entities'), entityOptions(entities, ''));
  const errorsTable = table({ id: 'errors' }, ['Time', 'Kind', 'Entity', 'Message', 'Request id'], []);
  const errorsBody = errorsTable.querySelector('tbody');
  const errorsEmpty = h('p', { class: 'empty', hidden: true }, 'No errors logged.');
  let errorsTurn = 0;
  const loadErrors = async () => {
    const turn = ++errorsTurn;
    logAlert.clear();
    const query = new URLSearchParams({ limit: '100' });
    if (kind.value) query.set('kind', kind.value);
    if (entity.value) query.set('entity', entity.value);
    try {
      const { data } = await get(`${base}/errors?${query}`);
      if (turn !== errorsTurn) return; // a later filter's answer wins
      replace(errorsBody, data.map(errorRow));
      errorsEmpty.hidden = data.length > 0;
    } catch (error) {
      if (turn === errorsTurn) logAlert.show(error);
    }
  };
  kind.addEventListener('change', loadErrors);
  entity.addEventListener('change', loadErrors);

  replace(page,
    connectionHeader(conn, 'health', entities),
    statusBox,
    h('section', { 'aria-labelledby': 'errors-title' },
      h('h2', { id: 'errors-title' }, 'Error log'),
      h('p', { class: 'hint' }, 'Upstream, mapping and plugin errors, newest first, each with the id of the request that met it.'),
      h('div', { class: 'row' }, field('Kind', kind), field('Entity', entity)),
      logAlert, errorsEmpty, errorsTable),
    reauthorizeSection(conn, base, loadStatus));
  await Promise.all([loadStatus(), loadErrors()]);
}

function drawStatus(box, status, refresh) {
  const value = (v) => (v === null || v === undefined ? h('span', { class: 'muted' }, '—') : v);
  const last = status.last_error;
  const counts = Object.entries(status.errors_by_kind || {});
  const entityRows = Object.entries(status.entities || {}).map(([name, e]) => h('tr', { 'data-entity': name },
    h('td', null, name),
    h('td', null, e.failing ? h('span', { class: 'error-text' }, `yes (${e.failing})`) : 'no'),
    h('td', null, Object.entries(e.errors || {}).map(([k, n]) => `${k}: ${n}`).join(', ') || '—'),
    h('td', null, String(e.successes ?? '—')),
    h('td', null, time(e.last_success))));
  replace(box,
    h('div', { class: 'card-head' }, h('h2', { id: 'health-title' }, 'Status'), refresh),
    h('dl', { class: 'facts' },
      h('dt', null, 'Status'), h('dd', null, statusBadge(status.status, { id: 'health-status' })),
      h('dt', null, 'Breaker'), h('dd', { id: 'health-breaker' }, BREAKER_WORDS[status.breaker] || status.breaker),
      h('dt', null, 'Retry after'), h('dd', { id: 'health-retry' }, status.retry_after_ms === null || status.retry_after_ms === undefined
        ? value(null) : `${(status.retry_after_ms / 1000).toFixed(1)} s (the upstream is not called before then)`),
      status.needs_reauth_since ? [h('dt', null, 'Needs reauthorization since'), h('dd', null, time(status.needs_reauth_since))] : null,
      h('dt', null, 'Last success'), h('dd', null, time(status.last_success)),
      h('dt', null, 'Last error'), h('dd', { id: 'health-last-error' }, last
        ? [badge(last.kind), ' ', last.entity ? `${last.entity}: ` : '', last.message, ' ', h('span', { class: 'muted small' }, time(last.at))]
        : value(null)),
      h('dt', null, 'Errors by kind'), h('dd', null, counts.length ? counts.map(([k, n]) => `${k}: ${n}`).join(', ') : value(null))),
    entityRows.length ? [h('h3', null, 'Per entity'),
      table({ id: 'health-entities' }, ['Entity', 'Failing', 'Errors', 'Successes', 'Last success'], entityRows)] : null);
}

function errorRow(entry) {
  const more = [
    entry.upstream_status ? `upstream status ${entry.upstream_status}` : null,
    entry.record_id ? `record ${entry.record_id}` : null,
    entry.plugin ? `plugin ${entry.plugin}` : null,
  ].filter(Boolean).join(' · ');
  return h('tr', { 'data-kind': entry.kind },
    h('td', null, time(entry.at)),
    h('td', null, badge(entry.kind)),
    h('td', null, entry.entity || '—'),
    h('td', null, entry.message, more ? h('div', { class: 'hint' }, more) : null),
    h('td', null, entry.request_id ? h('code', null, entry.request_id) : '—'));
}

/** New credentials for a live connection. */
function reauthorizeSection(conn, base, loadStatus) {
  if (conn.mode !== 'live') {
    return h('section', { class: 'card', 'aria-labelledby': 'reauth-title' },
      h('h2', { id: 'reauth-title' }, 'Credentials'),
      h('p', { class: 'hint' }, 'A sandbox connection serves built-in data and has no credentials.'));
  }
  const alert = alertArea('reauth-error');
  const done = statusArea('reauth-status');
  const credentials = h('textarea', {
    id: 'reauth-credentials', class: 'mono', rows: 5, spellcheck: 'false',
    placeholder: '{"type": "basic", "username": "…", "password": "…"}',
  });
  const button = h('button', { type: 'button', id: 'reauthorize' }, 'Reauthorize');
  button.addEventListener('click', action(async () => {
    done.clear();
    const parsed = parseJson(credentials.value, 'The credentials');
    const answer = await post(`${base}/reauthorize`, { credentials: parsed });
    credentials.value = '';
    forget(`connection:${conn.id}`);
    done.text(`The credentials were verified and stored; the connection has a new token${answer && answer.token ? ` (${answer.token})` : ''}.`);
    await loadStatus();
  }, alert, button));
  return h('section', { class: 'card', 'aria-labelledby': 'reauth-title' },
    h('h2', { id: 'reauth-title' }, 'Reauthorize'),
    h('p', { class: 'hint' }, 'New credentials are checked with a one-record read upstream first; refused ones change nothing. They are stored sealed and never shown again.'),
    field('Credentials (JSON)', credentials, 'One of {"type": "basic", "username", "password"}, {"type": "bearer", "token"}, {"type": "oauth2", "token_url", "client_id", "client_secret", "scope"?} or {"type": "api_key", "header", "key"}.'),
    alert, done, h('div', { class: 'buttons' }, button));
}
