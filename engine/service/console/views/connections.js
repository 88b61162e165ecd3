// views/connections.js: the Connections page (#/connections): the tenant's
// connections with their status and last error, a form to create one (sandbox, or
// live with its upstream settings and credentials), and deleting one.

import { get, post, del, seg } from '../api.js';
import {
  h, alertArea, statusArea, statusBadge, badge, field, options, table, time, action, confirmButton, replace,
  parseJson,
} from '../dom.js';
import { mappedEntities, connectionHref, forget, systems } from './common.js';

const UPSTREAM_EXAMPLE = `{
  "base_url": "https://…",
  "timeout_ms": 10000
}`;

const CREDENTIALS_EXAMPLE = `{
  "type": "basic",
  "username": "CROSSWALK",
  "password": "…"
}`;

/** A message to show once at the top of the page after it is drawn again. */
let flash = null;

export async function render(page) {
  document.title = 'Connections · Crosswalk console';
  const alert = alertArea('connections-error');
  const notice = statusArea('connections-status');
  if (flash) notice.text(...flash);
  flash = null;
  const { data } = await get('/v1/connections');
  const confirms = [];
  const redraw = async (...message) => {
    flash = message;
    await render(page);
  };
  const rows = data.map((conn) => row(conn, alert, confirms, redraw));
  replace(page,
    h('h1', { tabindex: '-1' }, 'Connections'),
    h('p', { class: 'lead' }, 'Each connection reads one source system and maps its records to the unified model. Open one to see and change its mapping.'),
    notice, alert,
    data.length === 0 ? h('p', { class: 'empty' }, 'No connections yet: create one below.') : null,
    table({ id: 'connections' }, ['Name', 'System', 'Mode', 'Status', 'Last error', ''], rows),
    createForm(redraw));
}

/** One connection's row; its status and first mapped entity are filled in as they come. */
function row(conn, alert, confirms, redraw) {
  const link = h('a', { class: 'open', href: connectionHref(conn.id, 'mapping') }, conn.name);
  const statusCell = h('td', { class: 'status' }, h('span', { class: 'muted' }, '…'));
  const errorCell = h('td', { class: 'last-error' }, h('span', { class: 'muted' }, '…'));
  const remove = confirmButton({ class: 'delete danger small', 'aria-label': `Delete ${conn.name}` }, 'Delete', 'Confirm delete',
    action(async () => {
      await del(`/v1/connections/${seg(conn.id)}`);
      forget(`connection:${conn.id}`);
      await redraw(`Deleted ${conn.name} (${conn.id}).`);
    }, alert), confirms);
  const tr = h('tr', { 'data-connection': conn.id },
    h('td', null, link, h('div', { class: 'muted small' }, h('code', null, conn.id))),
    h('td', null, conn.system),
    h('td', null, conn.mode),
    statusCell, errorCell,
    h('td', null, remove));
  mappedEntities(conn).then((entities) => {
    if (entities.length) link.href = connectionHref(conn.id, 'mapping', entities[0]);
  }, () => {});
  get(`/v1/connections/${seg(conn.id)}/status`).then((status) => {
    replace(statusCell, h('a', { href: connectionHref(conn.id, 'health') }, statusBadge(status.status)));
    const last = status.last_error;
    replace(errorCell, last ? lastError(last) : h('span', { class: 'muted' }, 'none'));
  }, (error) => {
    replace(statusCell, h('span', { class: 'muted' }, 'unknown'));
    replace(errorCell, h('span', { class: 'error-text' }, error.message));
  });
  return tr;
}

/** The last error of a status: a message, possibly with its time and kind. */
function lastError(last) {
  if (typeof last === 'string') return last;
  return h('span', null,
    last.kind ? badge(last.kind) : null, ' ',
    last.message || JSON.stringify(last), ' ',
    last.at ? h('span', { class: 'muted small' }, time(last.at)) : null);
}

/** The form that creates a connection; `redraw` shows the page again with a message. */
function createForm(redraw) {
  const alert = alertArea('new-connection-error');
  const system = h('select', { id: 'new-system' });
  // The systems the service maps, as it lists them.
  systems().then(
    (list) => replace(system, ...options(list.map((s) => [s.id, s.name]), list[0] && list[0].id)),
    (error) => alert.show(error),
  );
  const name = h('input', { id: 'new-name', type: 'text', required: true, maxlength: '200', autocomplete: 'off' });
  const mode = h('select', { id: 'new-mode' }, options([['sandbox', 'Sandbox (built-in sample data)'], ['live', 'Live (the system’s own API)']], 'sandbox'));
  const upstream = h('textarea', { id: 'new-upstream', class: 'mono', rows: 5, spellcheck: 'false', placeholder: UPSTREAM_EXAMPLE });
  const credentials = h('textarea', { id: 'new-credentials', class: 'mono', rows: 5, spellcheck: 'false', autocomplete: 'off', placeholder: CREDENTIALS_EXAMPLE });
  const verify = h('input', { id: 'new-verify', type: 'checkbox', checked: true });
  const live = h('fieldset', { class: 'live-only', hidden: true },
    h('legend', null, 'Live connection'),
    field('Upstream settings (JSON)', upstream,
      'How to reach the system: "base_url" is required; "timeout_ms", "max_concurrency", "page_size" and "breaker" have defaults.'),
    field('Credentials (JSON)', credentials,
      'One of {"type": "basic", "username", "password"}, {"type": "bearer", "token"}, {"type": "oauth2", "token_url", "client_id", "client_secret", "scope"?} or {"type": "api_key", "header", "key"}. They are sent once, stored sealed, and never shown again.'),
    h('div', { class: 'field inline' }, verify, h('label', { for: 'new-verify' }, 'Check the credentials against the system before creating it')));
  mode.addEventListener('change', () => { live.hidden = mode.value !== 'live'; });
  const button = h('button', { type: 'submit', id: 'create-connection' }, 'Create connection');
  const form = h('form', { id: 'new-connection', class: 'card' },
    h('h2', null, 'New connection'),
    h('div', { class: 'row' }, field('System', system), field('Name', name), field('Mode', mode)),
    live, alert, h('div', { class: 'buttons' }, button));
  form.addEventListener('submit', action(async () => {
    const body = { system: system.value, name: name.value.trim(), mode: mode.value };
    if (mode.value === 'live') {
      body.upstream = liveSetting(upstream.value, 'The upstream settings');
      body.credentials = liveSetting(credentials.value, 'The credentials');
      if (verify.checked) body.verify = true;
    }
    const created = await post('/v1/connections', body);
    credentials.value = '';
    const verified = created.credentials_verified === undefined || created.credentials_verified === null ? ''
      : created.credentials_verified ? ' Its credentials were verified.' : ' Its credentials were not checked.';
    await redraw(`Created ${created.name} (${created.id}).${verified} `,
      h('a', { href: connectionHref(created.id, 'mapping') }, 'Open its mapping'), '.');
  }, alert, button));
  return form;
}

/** A live connection's JSON setting, which must be given. */
function liveSetting(text, what) {
  if (!text.trim()) throw new Error(`${what} are needed for a live connection.`);
  return parseJson(text, what);
}
