// views/mapping-sample.js: the sample record panel of the Mapping page.
//
// The sample is a source record: either one the connection reads (its collection
// listed with `remote_data=true`, each record's `remote_data`), or JSON pasted by the
// person. It is shown as a tree (`#sample-tree`) whose values pick their JSONPath for
// the rule editor, and it is the payload of previews.

import { get, seg, COLLECTIONS } from '../api.js';
import { h, alertArea, field, options, replace, action } from '../dom.js';
import { sourceTree, filterTree } from '../tree.js';
import { connectionError } from './common.js';

export function createSample(ctx) {
  const { session, conn, entity } = ctx;
  let pickHandler = () => {};
  let changeHandler = () => {};

  const alert = alertArea('sample-error');
  const source = h('select', { id: 'sample-source' },
    options([['sandbox', 'Record from the connection'], ['paste', 'Paste JSON']], session.source || 'sandbox'));
  const record = h('select', { id: 'sample-record' });
  const pasted = h('textarea', { id: 'sample-json', class: 'mono', rows: 8, spellcheck: 'false', placeholder: '{"PurchaseOrder": "4500000001", …}', value: session.pasted });
  const pastedField = field('Source record (JSON)', pasted, 'One record as the source system answers it.');
  const load = h('button', { type: 'button', id: 'load-sample' }, 'Load sample');
  const info = h('p', { id: 'sample-info', class: 'hint' });
  const hintLine = h('p', { id: 'sample-hint', class: 'hint', role: 'status' });
  const filter = h('input', { id: 'tree-filter', type: 'search', autocomplete: 'off', placeholder: 'key or value' });
  const tree = h('div', { id: 'sample-tree', class: 'sample-tree' });
  const recordField = field('Record', record);

  filter.addEventListener('input', () => filterTree(tree, filter.value));
  source.addEventListener('change', () => {
    session.source = source.value;
    showSourceFields();
  });
  record.addEventListener('change', () => {
    session.index = Number(record.value);
    use(session.records[session.index].remote_data, describe(session.records[session.index]));
  });
  pasted.addEventListener('input', () => { session.pasted = pasted.value; });
  load.addEventListener('click', action(() => (source.value === 'paste' ? loadPasted() : loadRecords()), alert, load));

  const element = h('section', { class: 'card sample', 'aria-labelledby': 'sample-title' },
    h('h2', { id: 'sample-title' }, 'Sample record'),
    h('div', { class: 'row' }, field('Source', source), recordField),
    pastedField,
    h('div', { class: 'buttons' }, load),
    alert, info,
    field('Filter the tree', filter),
    hintLine,
    tree);

  function showSourceFields() {
    const paste = source.value === 'paste';
    pastedField.hidden = !paste;
    recordField.hidden = paste;
  }

  function describe(r) {
    const scenario = r.scenario ? ` (${r.scenario})` : '';
    return `${r.id ?? 'record'}${scenario}`;
  }

  /**
   * Lists the first page of the connection's records, each with its source record; the
   * record chosen before stays chosen when it is still listed.
   */
  async function loadRecords() {
    const collection = COLLECTIONS[entity];
    let page;
    try {
      page = await get(`/v1/connections/${seg(conn.id)}/${collection}?page_size=20&remote_data=true`);
    } catch (error) {
      alert.text(connectionError(error, conn.id));
      return;
    }
    const records = (page.data || []).map((r, i) => ({
      ...r,
      scenario: page.sandbox && page.sandbox[i] ? page.sandbox[i].scenario : null,
    }));
    if (records.length === 0) {
      alert.text(`The connection answered no ${collection}: paste a source record instead.`);
      return;
    }
    const chosen = session.records && session.records[session.index] ? session.records[session.index].id : null;
    session.records = records.map((r) => ({ id: r.id, scenario: r.scenario, remote_data: r.remote_data }));
    session.index = Math.max(0, session.records.findIndex((r) => r.id === chosen));
    fillRecords();
    use(session.records[session.index].remote_data, describe(session.records[session.index]));
  }

  function fillRecords() {
    const list = session.records || [];
    replace(record, list.length
      ? list.map((r, i) => h('option', { value: String(i), selected: i === session.index }, describe(r)))
      : h('option', { value: '' }, 'Load to list records'));
    record.disabled = list.length === 0;
  }

  function loadPasted() {
    let value;
    try {
      value = JSON.parse(pasted.value);
    } catch (error) {
      alert.text(`The pasted text is not valid JSON: ${error.message}`);
      return;
    }
    let note = 'pasted JSON';
    if (Array.isArray(value)) {
      if (value.length === 0) {
        alert.text('The pasted array is empty: paste one source record.');
        return;
      }
      [value] = value;
      note = 'the first record of the pasted array';
    }
    use(value, note);
  }

  /** Makes `value` the sample. */
  function use(value, label) {
    if (value === undefined || value === null) {
      alert.text('This record came without its source record (remote_data).');
      return;
    }
    session.sample = value;
    session.sampleLabel = label;
    draw();
    changeHandler();
  }

  function draw() {
    if (session.sample === undefined) {
      info.textContent = 'No sample yet: load a record from the connection, or paste one.';
      replace(tree);
      return;
    }
    info.textContent = `Sample: ${session.sampleLabel || 'a source record'}. Choose a value to use its path in the open rule.`;
    replace(tree, sourceTree(session.sample, (segments) => pickHandler(segments)));
    if (filter.value) filterTree(tree, filter.value);
  }

  /** First drawing: the kept sample, or (on a sandbox) a record loaded at once. */
  function start() {
    showSourceFields();
    fillRecords();
    draw();
    if (session.sample === undefined && conn.mode === 'sandbox' && source.value === 'sandbox') {
      action(loadRecords, alert, load)();
    }
  }

  return {
    element,
    start,
    onPick: (fn) => { pickHandler = fn; },
    onChange: (fn) => { changeHandler = fn; },
    hint: (text) => { hintLine.textContent = text; },
  };
}
