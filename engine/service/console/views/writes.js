// views/writes.js: the Writes page of a connection (#/connections/ID/writes/ENTITY):
// a unified record (prefilled from the connection's first record, without its source
// record and without the fields writes cannot set) turned into the system's own
// payload by the reverse mapping, without sending it; and the fields that cannot be
// written, with the reasons.

import { get, post, seg, COLLECTIONS, ENTITY_LABELS } from '../api.js';
import { h, alertArea, pretty, replace, action, field, parseJson, withCode } from '../dom.js';
import {
  connection, mappedEntities, connectionHeader, connectionHref, modelSchema, connectionError,
} from './common.js';

export async function render(page, id, entity) {
  const conn = await connection(id);
  const entities = await mappedEntities(conn);
  if (!entity || !entities.includes(entity)) {
    if (entities.length) location.replace(connectionHref(id, 'writes', entities[0]));
    else replace(page, connectionHeader(conn, 'writes', entities), h('p', { class: 'empty' }, 'This system maps no entity.'));
    return;
  }
  document.title = `${ENTITY_LABELS[entity]} writes · ${conn.name} · Crosswalk console`;
  const base = `/v1/connections/${seg(id)}`;
  const collection = COLLECTIONS[entity];
  const mapping = await get(`${base}/mappings/${entity}`);
  const readOnly = mapping.read_only || [];

  const alert = alertArea('write-error');
  const record = h('textarea', { id: 'write-record', class: 'mono', rows: 18, spellcheck: 'false' });
  const payload = h('pre', { id: 'write-payload', class: 'payload' }, h('span', { class: 'muted' }, 'Preview a write to see the payload.'));
  const unwritable = h('ul', { id: 'unwritable', class: 'bindings' });
  const prefillNote = h('p', { class: 'hint' });
  const button = h('button', { type: 'button', id: 'preview-write' }, 'Preview the write');

  /** The read-only list, with the fields of this record that a preview refused first. */
  const drawUnwritable = (refused = []) => {
    const items = refused.map((e) => h('li', { 'data-field': e.field, class: 'error-text' },
      h('code', null, e.field), ' (in this record): ', withCode(e.message)));
    const named = new Set(refused.map((e) => String(e.field).replace(/\[\d+\]/g, '')));
    for (const r of readOnly.filter((x) => !named.has(x.target))) {
      items.push(h('li', { 'data-field': r.target }, h('code', null, r.target), ': read-only on this connection: ', withCode(r.reason)));
    }
    if (mapping.write_refused) items.unshift(h('li', { class: 'error-text' }, `Every write of this entity is refused: ${mapping.write_refused}`));
    if (!items.length) items.push(h('li', { class: 'muted' }, 'Every field of this mapping can be written.'));
    replace(unwritable, items);
  };

  button.addEventListener('click', action(async () => {
    const body = parseJson(record.value, 'The record');
    try {
      const answer = await post(`${base}/${collection}/preview-write`, body);
      replace(payload, pretty(answer.native_payload));
      drawUnwritable();
    } catch (error) {
      replace(payload, h('span', { class: 'muted' }, 'No payload: the write would be refused.'));
      if (error.status === 422 && error.details && Array.isArray(error.details.errors)) {
        // Each field at fault is listed, with its reason, under "Fields that cannot be written".
        drawUnwritable(error.details.errors);
        alert.text(`The write would be refused: ${error.details.errors.length === 1 ? 'a field' : `${error.details.errors.length} fields`} of this record cannot be written (marked under “Fields that cannot be written”, with the reasons).`);
        return;
      }
      throw error;
    }
  }, alert, button));

  drawUnwritable();
  replace(page,
    connectionHeader(conn, 'writes', entities, entity),
    h('p', { class: 'lead' }, `A write turns a unified ${entity} into ${conn.system}'s own payload through the reverse of this connection's mapping (version ${mapping.version}). The preview shows that payload without sending it.`),
    h('div', { class: 'two-cols' },
      h('section', { 'aria-labelledby': 'write-title' },
        h('h2', { id: 'write-title' }, 'Unified record'),
        field(`The ${entity} to write (JSON)`, record),
        prefillNote, alert,
        h('div', { class: 'buttons' }, button)),
      h('section', { 'aria-labelledby': 'payload-title' },
        h('h2', { id: 'payload-title' }, 'Native payload'), payload,
        h('h2', { id: 'unwritable-title' }, 'Fields that cannot be written'), unwritable)));

  // The example record: the connection's first one, as far as it can be written.
  try {
    const answer = await get(`${base}/${collection}?page_size=1`);
    const first = answer.data && answer.data[0];
    if (first) {
      // Only the model's fields: not `remote_data`, nor the `errors` of a record that mapped partly.
      const schema = await modelSchema(entity).catch(() => null);
      for (const key of Object.keys(first)) {
        if (key === 'remote_data' || key === 'errors' || (schema && schema.properties && !(key in schema.properties))) delete first[key];
      }
      const removed = readOnly.map((r) => r.target).filter((t) => removeTarget(first, t.split('.')));
      record.value = pretty(first);
      prefillNote.textContent = `Prefilled with the connection's record ${first.id ?? ''}${removed.length ? `, without the read-only ${removed.join(', ')}` : ''}.`;
    } else {
      record.value = '{}';
      prefillNote.textContent = 'The connection has no record to start from: write the fields to send.';
    }
  } catch (error) {
    record.value = '{}';
    replace(prefillNote, 'No example record could be read: write the fields to send. ', connectionError(error, id));
  }
}

/** Removes a dotted target from a record (from every element of an array on the way). */
function removeTarget(value, parts) {
  if (Array.isArray(value)) return value.map((v) => removeTarget(v, parts)).some(Boolean);
  if (!value || typeof value !== 'object' || !(parts[0] in value)) return false;
  if (parts.length === 1) {
    delete value[parts[0]];
    return true;
  }
  return removeTarget(value[parts[0]], parts.slice(1));
}
