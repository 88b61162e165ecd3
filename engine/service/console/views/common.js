// views/common.js: what several pages share: cached look-ups (a connection, the
// entities its system maps, the model's schemas, the transform catalog, plugin
// descriptions), the model's field types, the header of a connection's pages (title,
// sub-navigation, entity switcher) and their error messages.

import { get, seg, ENTITIES, ENTITY_LABELS } from '../api.js';
import { h, options } from '../dom.js';

const cache = new Map();

/** Forgets every cached answer (at sign-out, or when a page wants fresh data). */
export function forget(prefix = '') {
  for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
}

/** `load()` once per key; a failure is not kept. */
function once(key, load) {
  if (!cache.has(key)) {
    const promise = load();
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

/** One connection. */
export function connection(id) {
  return once(`connection:${id}`, () => get(`/v1/connections/${seg(id)}`));
}

/** The source systems and the entities each maps (`GET /v1/systems`). */
export function systems() {
  return once('systems', async () => (await get('/v1/systems')).data);
}

/** The entities a connection's system has a default mapping of, in the model's order. */
export async function mappedEntities(conn) {
  const system = (await systems()).find((s) => s.id === conn.system);
  const mapped = system ? system.entities : [];
  return ENTITIES.filter((e) => mapped.includes(e));
}

/** The JSON Schema of an entity of the unified model. */
export function modelSchema(entity) {
  return once(`model:${entity}`, () => get(`/v1/model/${seg(entity)}`));
}

/** The built-in transforms: `[{name, summary, arguments, example}]`. */
export function transformCatalog() {
  return once('transforms', async () => (await get('/v1/transforms')).data);
}

/** A plugin version and its functions. */
export function pluginInfo(sha256) {
  return once(`plugin:${sha256}`, () => get(`/v1/plugins/${seg(sha256)}`));
}

/**
 * What the model says of a dotted target (`lines.unit_price`): `{type, required}`,
 * `type` as people read it (`number`, `string (date)`, `enum`, `array of object`), or
 * null when the schema does not have it. Custom fields take any JSON value.
 */
export function fieldInfo(schema, target) {
  if (!schema) return null;
  const parts = target.split('.');
  if (parts[0] === 'custom_fields' && parts.length > 1) {
    return { type: 'any JSON', required: false, description: 'A custom field.', members: null };
  }
  let node = resolve(schema, schema);
  let listed = false;
  for (const part of parts) {
    node = resolve(schema, objectOf(schema, node));
    const props = node && node.properties;
    if (!props || !props[part]) return null;
    listed = Array.isArray(node.required) && node.required.includes(part);
    node = resolve(schema, props[part]);
  }
  // Every field is present in every record (`null` when nothing maps), so the model
  // lists them all as required: a field that must have a value is one that is listed
  // and does not take null.
  return {
    type: typeText(schema, node),
    required: listed && !allowsNull(schema, node),
    description: node.description || null,
    members: Array.isArray(node.enum) ? node.enum.filter((m) => m !== null) : null,
  };
}

/** Whether a schema accepts null. */
function allowsNull(root, node) {
  if (!node) return true;
  if (node.type === 'null' || (Array.isArray(node.type) && node.type.includes('null'))) return true;
  if (Array.isArray(node.enum) && node.enum.includes(null)) return true;
  const alternatives = node.anyOf || node.oneOf;
  return Boolean(alternatives && alternatives.some((x) => allowsNull(root, resolve(root, x))));
}

/** The object schema inside an array's `items`, or the node itself. */
function objectOf(root, node) {
  const n = resolve(root, node);
  if (n && !n.properties && n.items) return resolve(root, n.items);
  if (n && !n.properties && (n.anyOf || n.oneOf)) {
    const inner = (n.anyOf || n.oneOf).map((x) => objectOf(root, x)).find((x) => x && x.properties);
    if (inner) return inner;
  }
  return n;
}

/** Follows a local `$ref` (`#/$defs/Line`). */
function resolve(root, node) {
  let n = node;
  for (let i = 0; n && n.$ref && i < 10; i += 1) {
    const path = n.$ref.replace(/^#\/?/, '').split('/').filter(Boolean);
    n = path.reduce((at, key) => (at ? at[decodeURIComponent(key).replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root);
  }
  return n;
}

function typeText(root, node) {
  if (!node) return null;
  if (node.enum) return 'enum';
  const alternatives = node.anyOf || node.oneOf;
  if (alternatives) {
    const texts = alternatives.map((x) => typeText(root, resolve(root, x))).filter((t) => t && t !== 'null');
    return [...new Set(texts)].join(' | ') || 'null';
  }
  let type = Array.isArray(node.type) ? node.type.filter((t) => t !== 'null').join(' | ') : node.type;
  if (!type) type = node.properties ? 'object' : 'any';
  if (type === 'array' && node.items) {
    const items = typeText(root, resolve(root, node.items));
    return items ? `array of ${items}` : 'array';
  }
  return node.format ? `${type} (${node.format})` : type;
}

/** The links of a connection's pages. */
const PAGES = [
  ['mapping', 'Mapping'],
  ['plugins', 'Plugins'],
  ['health', 'Health'],
  ['writes', 'Writes'],
];

/** The hash of a connection's page; mapping and writes name an entity. */
export function connectionHref(id, page, entity) {
  const base = `#/connections/${encodeURIComponent(id)}/${page}`;
  return (page === 'mapping' || page === 'writes') && entity ? `${base}/${entity}` : base;
}

/**
 * The header of a connection's pages: its name and system, the sub-navigation, and
 * (when `entity` is given) the entity switcher `#entity`, which moves to the same page
 * for another entity.
 */
export function connectionHeader(conn, page, entities, entity) {
  const nav = h('nav', { class: 'subnav', 'aria-label': 'Connection pages' },
    PAGES.map(([name, label]) => h('a', {
      href: connectionHref(conn.id, name, entity || entities[0]),
      'aria-current': name === page ? 'page' : null,
    }, label)));
  const switcher = entity ? h('div', { class: 'entity-switch' },
    h('label', { for: 'entity' }, 'Entity'),
    h('select', {
      id: 'entity',
      onchange: (event) => { location.hash = connectionHref(conn.id, page, event.target.value); },
    }, entityOptions(entities, entity))) : null;
  return h('div', { class: 'connection-header' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/connections' }, 'Connections'), ' / '),
    h('h1', { tabindex: '-1' }, conn.name),
    h('p', { class: 'meta' },
      h('span', null, conn.system), ' · ', h('span', null, conn.mode), ' · ', h('code', null, conn.id)),
    h('div', { class: 'subnav-row' }, nav, switcher));
}

/**
 * An API error's message for a connection's page; when the upstream refused the
 * connection's credentials, with a link to the Health page that takes new ones.
 */
export function connectionError(error, id) {
  if (error.code !== 'needs_reauth') return error.message;
  return [error.message, ' ', h('a', { href: connectionHref(id, 'health') }, 'Reauthorize it on the Health page.')];
}

/** Labels of entities for selects. */
export function entityOptions(entities, selected) {
  return options(entities.map((e) => [e, ENTITY_LABELS[e] || e]), selected);
}
