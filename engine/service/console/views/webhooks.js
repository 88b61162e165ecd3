// views/webhooks.js: the Webhooks page (#/webhooks): the tenant's subscriptions, each
// with its delivery log, a test delivery and unsubscribing; and a form to subscribe a
// URL to events, whose signing secret is shown once.

import { get, post, del, seg } from '../api.js';
import {
  h, alertArea, statusArea, field, replace, table, time, action, confirmButton,
} from '../dom.js';

const EVENTS = [
  ['connection.reauth_required', 'the upstream refused a connection’s credentials'],
  ['connection.reauthorized', 'new credentials restored a connection'],
  ['connection.status_changed', 'a connection’s status changed'],
  ['mapping.updated', 'a mapping changed'],
  ['plugin.failing', 'a plugin started failing on a connection'],
];

/** Messages shown once after the page is drawn again (the secret among them). */
let flash = null;

export async function render(page) {
  document.title = 'Webhooks · Crosswalk console';
  const { data } = await get('/v1/webhooks');
  const alert = alertArea('webhooks-error');
  const status = statusArea('webhooks-status');
  if (flash) status.text(...flash);
  flash = null;
  const confirms = [];
  const redraw = async (...message) => {
    flash = message.length ? message : null;
    await render(page);
  };
  const rows = data.flatMap((subscription) => subscriptionRows(subscription, alert, confirms, redraw));
  replace(page,
    h('h1', { tabindex: '-1' }, 'Webhooks'),
    h('p', { class: 'lead' }, 'Crosswalk posts events to these URLs, signed with each subscription’s secret (the Crosswalk-Signature header), and retries until they are delivered.'),
    status, alert,
    data.length ? table({ id: 'webhooks' }, ['URL', 'Events', ''], rows) : h('p', { class: 'empty' }, 'No subscriptions yet.'),
    subscribeForm(redraw));
}

/** A subscription's row, then a row with its delivery log. */
function subscriptionRows(subscription, alert, confirms, redraw) {
  const log = h('div', { class: 'deliveries', 'data-deliveries': subscription.id }, h('span', { class: 'muted' }, 'Loading…'));
  const loadLog = async () => {
    try {
      const { data } = await get(`/v1/webhooks/${seg(subscription.id)}/deliveries`);
      replace(log, data.length ? deliveriesTable(data.slice(0, 10)) : h('span', { class: 'muted' }, 'No delivery attempted yet.'),
        data.length > 10 ? h('p', { class: 'hint' }, `The 10 newest of ${data.length} attempts.`) : null);
    } catch (error) {
      replace(log, h('span', { class: 'error-text', role: 'alert' }, error.message));
    }
  };
  loadLog();
  const test = h('button', {
    type: 'button', class: 'test-delivery small secondary', 'aria-label': `Send a test event to ${subscription.url}`,
  }, 'Send a test event');
  test.addEventListener('click', action(async () => {
    const answer = await post(`/v1/webhooks/${seg(subscription.id)}/test`);
    replace(log, h('span', { class: 'muted' }, `Test event ${answer.event_id} queued; its delivery shows here once attempted…`));
    setTimeout(loadLog, 1500);
  }, alert, test));
  const remove = confirmButton({ class: 'delete small danger', 'aria-label': `Unsubscribe ${subscription.url}` }, 'Unsubscribe', 'Confirm unsubscribe',
    action(async () => {
      await del(`/v1/webhooks/${seg(subscription.id)}`);
      await redraw(`Unsubscribed ${subscription.url}.`);
    }, alert), confirms);
  const refresh = h('button', {
    type: 'button', class: 'refresh-deliveries small secondary', 'aria-label': `Refresh the delivery log of ${subscription.url}`,
    onclick: () => loadLog(),
  }, 'Refresh log');
  return [
    h('tr', { 'data-webhook': subscription.id },
      h('td', null, h('code', null, subscription.url), h('div', { class: 'hint' }, subscription.id, ' · created ', time(subscription.created_at))),
      h('td', null, (subscription.events || []).map((e) => [h('span', { class: 'badge' }, e), ' '])),
      h('td', { class: 'actions' }, h('div', { class: 'buttons' }, test, refresh, remove))),
    h('tr', { class: 'deliveries-row', 'data-deliveries-for': subscription.id },
      h('td', { colspan: '3' }, h('div', { class: 'small muted' }, 'Delivery log'), log)),
  ];
}

function deliveriesTable(attempts) {
  return h('table', { class: 'deliveries-table' },
    h('thead', null, h('tr', null, ['Time', 'Event', 'Attempt', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, attempts.map((a) => h('tr', { 'data-event': a.event_id, 'data-outcome': a.outcome },
      h('td', null, time(a.at)),
      h('td', null, h('code', null, a.event_type), h('div', { class: 'hint' }, a.event_id)),
      h('td', null, String(a.attempt)),
      h('td', null, h('span', { class: `badge ${a.outcome === 'delivered' ? 'status-healthy' : 'status-degraded'}` }, a.outcome),
        a.status ? ` HTTP ${a.status}` : '',
        a.error ? h('div', { class: 'hint' }, a.error) : null,
        a.next_attempt_at ? h('div', { class: 'hint' }, 'next attempt ', time(a.next_attempt_at)) : null)))));
}

function subscribeForm(redraw) {
  const alert = alertArea('new-webhook-error');
  const url = h('input', { id: 'webhook-url', type: 'url', required: true, placeholder: 'https://…' });
  const secret = h('input', { id: 'webhook-secret', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const boxes = EVENTS.map(([name, what]) => h('div', { class: 'field inline' },
    h('input', { type: 'checkbox', id: `event-${name.replace('.', '-')}`, name: 'events', value: name, checked: true }),
    h('label', { for: `event-${name.replace('.', '-')}` }, h('code', null, name), ` — ${what}`)));
  const button = h('button', { type: 'submit', id: 'subscribe' }, 'Subscribe');
  const form = h('form', { id: 'new-webhook', class: 'card' },
    h('h2', null, 'Subscribe a URL'),
    field('URL', url),
    h('fieldset', null, h('legend', null, 'Events'), boxes),
    field('Signing secret (optional)', secret, 'At least 16 characters; leave blank and Crosswalk makes one. It is shown once.'),
    alert, h('div', { class: 'buttons' }, button));
  form.addEventListener('submit', action(async () => {
    const events = boxes.map((b) => b.querySelector('input')).filter((b) => b.checked).map((b) => b.value);
    if (!events.length) throw new Error('Choose at least one event.');
    const body = { url: url.value.trim(), events };
    if (secret.value.trim()) body.secret = secret.value.trim();
    url.removeAttribute('aria-invalid');
    let answer;
    try {
      answer = await post('/v1/webhooks', body);
    } catch (error) {
      // A refused address (`address_not_allowed`) or URL names the field at fault.
      if (error.details && error.details.field === 'url') {
        url.setAttribute('aria-invalid', 'true');
        url.focus();
      }
      throw error;
    }
    await redraw(`Subscribed ${answer.subscription.url}. Its signing secret, shown this once: `,
      h('span', { id: 'webhook-secret-once', class: 'secret' }, answer.secret));
  }, alert, button));
  return form;
}
