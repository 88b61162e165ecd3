// views/plugins.js: the Plugins page of a connection (#/connections/ID/plugins):
// upload a plugin (drop a .wasm or choose one), the tenant's plugin versions with
// their functions, deleting one, and binding a version (with its limits) to the
// connection's mapping of an entity, or unbinding it.

import { request, get, del, seg, ifMatch, etagVersion, ENTITY_LABELS } from '../api.js';
import {
  h, alertArea, statusArea, bytes, field, replace, table, time, action,
} from '../dom.js';
import { connection, mappedEntities, connectionHeader, pluginInfo, entityOptions } from './common.js';

/** The limits a binding may change (docs/plugins.md), with their defaults and ceilings. */
const LIMITS = [
  ['timeout_ms', 'Time per call (ms)', '50', '5,000'],
  ['memory_bytes', 'Memory (bytes)', '67108864 (64 MiB)', '512 MiB'],
  ['max_input_bytes', 'Input per call (bytes)', '4194304 (4 MiB)', '64 MiB'],
  ['max_output_bytes', 'Output per call (bytes)', '4194304 (4 MiB)', '64 MiB'],
  ['max_log_bytes', 'Log kept (bytes)', '65536 (64 KiB)', '1 MiB'],
];

/** A message shown once after the page is drawn again. */
let flash = null;

export async function render(page, id) {
  const conn = await connection(id);
  const entities = await mappedEntities(conn);
  document.title = `Plugins · ${conn.name} · Crosswalk console`;
  const [list, mappings] = await Promise.all([
    get('/v1/plugins'),
    Promise.all(entities.map(async (entity) => {
      const answer = await request('GET', mappingUrl(id, entity));
      return { entity, version: etagVersion(answer.headers) ?? answer.data.version, plugins: answer.data.plugins || [] };
    })),
  ]);
  const plugins = list.data || [];
  const infos = new Map();
  await Promise.all(plugins.map(async (p) => {
    try {
      infos.set(p.sha256, await pluginInfo(p.sha256));
    } catch (error) {
      infos.set(p.sha256, { error });
    }
  }));
  // Bound versions may be ones this list does not show; their names come from their description.
  await Promise.all(mappings.flatMap((m) => m.plugins).filter((b) => !infos.has(b.sha256)).map(async (b) => {
    infos.set(b.sha256, await pluginInfo(b.sha256).catch((error) => ({ error })));
  }));

  const status = statusArea('plugins-status');
  if (flash) status.text(flash);
  flash = null;
  const redraw = async (message) => {
    flash = message;
    await render(page, id);
  };

  replace(page,
    connectionHeader(conn, 'plugins', entities),
    h('p', { class: 'lead' }, 'Plugins are WebAssembly components that add transform functions. Upload a version, then bind it to a mapping with its limits; its field functions become transform steps in the rule editor.'),
    status,
    uploadSection(redraw),
    pluginsTable(plugins, infos, redraw),
    bindSection(conn, entities, plugins, infos, mappings, redraw));
}

function mappingUrl(id, entity) {
  return `/v1/connections/${seg(id)}/mappings/${entity}`;
}

function shortSha(sha256) {
  return h('code', { title: sha256 }, `${sha256.slice(0, 12)}…`);
}

/** The name and version of a bound or listed plugin version. */
function nameOf(infos, sha256) {
  const info = infos.get(sha256);
  return info && info.plugin ? `${info.plugin.name} ${info.plugin.version}` : `${sha256.slice(0, 12)}…`;
}

/** The drop zone and file input that upload a plugin. */
function uploadSection(redraw) {
  const alert = alertArea('upload-error');
  const result = statusArea('upload-result');
  const input = h('input', { type: 'file', id: 'plugin-file', accept: '.wasm,application/wasm' });
  const zone = h('div', { id: 'drop-zone', class: 'drop-zone' },
    h('p', null, h('strong', null, 'Drop a plugin (.wasm) here'), ' or choose one:'),
    h('label', { for: 'plugin-file', class: 'hint' }, 'Plugin component file'),
    h('div', null, input));

  const upload = action(async (file) => {
    result.clear();
    if (!file) return;
    result.text(`Uploading ${file.name} (${bytes(file.size)})…`);
    let answer;
    try {
      answer = (await request('POST', '/v1/plugins', { body: file, contentType: 'application/wasm' })).data;
    } catch (error) {
      result.clear();
      alert.show(error, `${file.name} was refused:`);
      return;
    } finally {
      input.value = '';
    }
    const p = answer.plugin;
    const functions = (answer.functions || []).map((f) => f.name).join(', ');
    await redraw(`Uploaded ${p.name} ${p.version} (${p.sha256.slice(0, 12)}…, ${answer.interface}): ${functions || 'no functions'}.`);
  }, alert);

  input.addEventListener('change', () => upload(input.files[0]));
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) upload(file);
  });
  return h('section', { class: 'card', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title' }, 'Upload a plugin'), zone, alert, result);
}

/** The tenant's plugin versions. */
function pluginsTable(plugins, infos, redraw) {
  const alert = alertArea('plugins-error');
  const rows = plugins.map((p) => {
    const info = infos.get(p.sha256) || {};
    const functions = info.error
      ? h('span', { class: 'error-text' }, info.error.message)
      : h('ul', { class: 'bindings' }, (info.functions || []).map((f) => h('li', null,
        h('code', null, f.name), ` (${f.kind}`,
        f.inverse ? [', inverse ', h('code', null, f.inverse)] : ', no inverse', ')',
        f.description ? h('div', { class: 'hint' }, f.description) : null)));
    const remove = h('button', { type: 'button', class: 'delete danger small', 'aria-label': `Delete ${p.name} ${p.version}` }, 'Delete');
    remove.addEventListener('click', action(async () => {
      await del(`/v1/plugins/${seg(p.sha256)}`);
      await redraw(`Deleted ${p.name} ${p.version}.`);
    }, alert, remove));
    return h('tr', { 'data-sha256': p.sha256 },
      h('td', null, h('strong', null, p.name), info.interface ? h('div', { class: 'hint' }, info.interface) : null),
      h('td', null, p.version),
      h('td', null, shortSha(p.sha256)),
      h('td', null, bytes(p.size)),
      h('td', null, time(p.uploaded_at)),
      h('td', null, functions),
      h('td', { class: 'actions' }, remove));
  });
  return h('section', { 'aria-labelledby': 'plugins-title' },
    h('h2', { id: 'plugins-title' }, 'Plugin versions'),
    alert,
    plugins.length ? null : h('p', { class: 'empty' }, 'No plugin uploaded yet.'),
    table({ id: 'plugins' }, ['Name', 'Version', 'sha256', 'Size', 'Uploaded', 'Functions', ''], rows));
}

/** Binding a version to an entity's mapping, and the current bindings. */
function bindSection(conn, entities, plugins, infos, mappings, redraw) {
  const alert = alertArea('bind-error');
  const pluginSelect = h('select', { id: 'bind-plugin' },
    plugins.length
      ? plugins.map((p) => h('option', { value: p.sha256 }, `${p.name} ${p.version} (${p.sha256.slice(0, 12)}…)`))
      : h('option', { value: '' }, 'Upload a plugin first'));
  const entitySelect = h('select', { id: 'bind-entity' }, entityOptions(entities, entities[0]));
  const limitInputs = LIMITS.map(([name, label, byDefault, ceiling]) => field(label,
    h('input', { id: `limit-${name}`, type: 'number', min: '1', step: '1', placeholder: byDefault, 'data-limit': name }),
    `Default ${byDefault}; at most ${ceiling}.`));
  const bind = h('button', { type: 'button', id: 'bind' }, 'Bind');

  /** PUTs an entity's bindings on the version shown. */
  const putBindings = async (mapping, bindings) => {
    const answer = (await request('PUT', `${mappingUrl(conn.id, mapping.entity)}/plugins`, {
      body: bindings, headers: ifMatch(mapping.version),
    })).data;
    return answer.version;
  };

  bind.addEventListener('click', action(async () => {
    const sha256 = pluginSelect.value;
    if (!sha256) throw new Error('Upload a plugin first, then bind it.');
    const limits = {};
    for (const input of limitInputs.map((f) => f.querySelector('input'))) {
      const text = input.value.trim();
      if (!text) continue;
      const value = Number(text);
      if (!Number.isInteger(value) || value < 1) throw new Error(`${input.dataset.limit} must be a whole number of at least 1 (or blank for the default).`);
      limits[input.dataset.limit] = value;
    }
    const mapping = mappings.find((m) => m.entity === entitySelect.value);
    const name = infos.get(sha256) && infos.get(sha256).plugin ? infos.get(sha256).plugin.name : null;
    // A mapping binds one version of a plugin: this one replaces another of the same name.
    const kept = mapping.plugins.filter((b) => {
      const other = infos.get(b.sha256);
      return b.sha256 !== sha256 && !(name && other && other.plugin && other.plugin.name === name);
    });
    const version = await putBindings(mapping, [...kept, { sha256, limits }]);
    await redraw(`Bound ${nameOf(infos, sha256)} to the ${mapping.entity} mapping (version ${version}).`);
  }, alert, bind));

  const bound = mappings.flatMap((mapping) => mapping.plugins.map((b) => {
    const unbind = h('button', {
      type: 'button', class: 'unbind small secondary',
      'aria-label': `Unbind ${nameOf(infos, b.sha256)} from the ${mapping.entity} mapping`,
    }, 'Unbind');
    unbind.addEventListener('click', action(async () => {
      const version = await putBindings(mapping, mapping.plugins.filter((x) => x.sha256 !== b.sha256));
      await redraw(`Unbound ${nameOf(infos, b.sha256)} from the ${mapping.entity} mapping (version ${version}).`);
    }, alert, unbind));
    const limits = Object.entries(b.limits || {}).map(([k, v]) => `${k} ${v}`).join(', ');
    return h('li', { 'data-sha256': b.sha256, 'data-entity': mapping.entity },
      h('strong', null, ENTITY_LABELS[mapping.entity] || mapping.entity), ': ',
      nameOf(infos, b.sha256), ' ', shortSha(b.sha256), ' · ',
      limits ? `limits: ${limits}` : 'default limits', ' ', unbind);
  }));

  return h('section', { class: 'card', 'aria-labelledby': 'bind-title' },
    h('h2', { id: 'bind-title' }, 'Bind a plugin to a mapping'),
    h('p', { class: 'hint' }, 'Binding stores a new version of the mapping. Leave a limit blank to keep its default.'),
    h('div', { class: 'row' }, field('Plugin version', pluginSelect), field('Entity', entitySelect)),
    h('div', { class: 'limits' }, limitInputs),
    alert,
    h('div', { class: 'buttons' }, bind),
    h('h3', null, 'Bound plugins'),
    bound.length ? null : h('p', { class: 'empty' }, 'No plugin is bound to this connection’s mappings.'),
    h('ul', { id: 'bindings', class: 'bindings' }, bound));
}
