// views/tenants.js: the Tenants page (#/tenants), for an admin key: the tenants, and
// a form that creates one and shows its API key once.

import { get, post } from '../api.js';
import { h, alertArea, statusArea, field, replace, table, time, action } from '../dom.js';

/** A message shown once after the page is drawn again (the new key among it). */
let flash = null;

export async function render(page) {
  document.title = 'Tenants · Crosswalk console';
  const { data } = await get('/v1/tenants');
  const status = statusArea('tenants-status');
  if (flash) status.text(...flash);
  flash = null;
  const rows = data.map((t) => h('tr', { 'data-tenant': t.id },
    h('td', null, t.name), h('td', null, h('code', null, t.id)), h('td', null, time(t.created_at))));
  replace(page,
    h('h1', { tabindex: '-1' }, 'Tenants'),
    h('p', { class: 'lead' }, 'Each tenant has its own connections, plugins and webhooks, reached with its own keys.'),
    status,
    table({ id: 'tenants' }, ['Name', 'Id', 'Created'], rows),
    createForm(page));
}

function createForm(page) {
  const alert = alertArea('new-tenant-error');
  const name = h('input', { id: 'tenant-name', type: 'text', required: true, autocomplete: 'off' });
  const button = h('button', { type: 'submit', id: 'create-tenant' }, 'Create tenant');
  const form = h('form', { id: 'new-tenant', class: 'card' },
    h('h2', null, 'New tenant'), field('Name', name), alert, h('div', { class: 'buttons' }, button));
  form.addEventListener('submit', action(async () => {
    const answer = await post('/v1/tenants', { name: name.value.trim() });
    flash = [`Created ${answer.tenant.name} (${answer.tenant.id}). Its API key, shown this once: `,
      h('span', { id: 'tenant-key', class: 'secret' }, answer.api_key.secret),
      ' Keep it now: only its hash is stored.'];
    await render(page);
  }, alert, button));
  return form;
}
