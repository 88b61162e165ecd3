// tree.js: JSON shown as trees.
//
// - `sourceTree`: a source record as a collapsible tree whose values are buttons
//   (`button.node[data-path]`) that pick their JSONPath: dot notation for plain
//   identifiers (`$.to_PurchaseOrderItem.results[0].Plant`), brackets otherwise
//   (`$['odd key']`). Each also knows its wildcard form (every index as `[*]`).
// - `valueTree`: a unified record, read-only, each node carrying its path without the
//   `$` (`vendor.name`, `lines[0].quantity`) and marked `changed` when listed.
// - Path helpers: build paths from segments, parse simple paths back into segments,
//   and make a path relative to the element a nested rule reads.

import { h, compact } from './dom.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One segment of a JSONPath: `.name`, `['odd key']`, `[3]` or `[*]`. */
export function segmentText(segment) {
  if (segment === WILDCARD) return '[*]';
  if (typeof segment === 'number') return `[${segment}]`;
  if (IDENTIFIER.test(segment)) return `.${segment}`;
  return `['${segment.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

/** The wildcard segment of parsed paths. */
export const WILDCARD = Symbol('*');

/** `$` followed by the segments. */
export function pathOf(segments) {
  return `$${segments.map(segmentText).join('')}`;
}

/** The same path with every index replaced by `[*]`. */
export function wildcardOf(segments) {
  return pathOf(segments.map((s) => (typeof s === 'number' ? WILDCARD : s)));
}

/**
 * Parses a path made only of names, indexes and wildcards (`$.a['b c'][0][*].d`) into
 * segments; null for anything else (filters, slices, unions, descendants).
 */
export function parseSimplePath(text) {
  const source = (text || '').trim();
  if (!source.startsWith('$')) return null;
  const segments = [];
  let i = 1;
  while (i < source.length) {
    const rest = source.slice(i);
    let m;
    if ((m = rest.match(/^\.([A-Za-z_][A-Za-z0-9_]*)/))) {
      segments.push(m[1]);
    } else if ((m = rest.match(/^(\.\*|\[\*\])/))) {
      segments.push(WILDCARD);
    } else if ((m = rest.match(/^\[(\d+)\]/))) {
      segments.push(Number(m[1]));
    } else if ((m = rest.match(/^\[\s*'((?:[^'\\]|\\.)*)'\s*\]/) || rest.match(/^\[\s*"((?:[^"\\]|\\.)*)"\s*\]/))) {
      segments.push(m[1].replace(/\\(.)/g, '$1'));
    } else {
      return null;
    }
    i += m[0].length;
  }
  return segments;
}

/**
 * The segments after `pattern` when `segments` starts with it (a wildcard in the
 * pattern matches any one segment), or null.
 */
export function relativeTo(pattern, segments) {
  if (pattern.length > segments.length) return null;
  for (let i = 0; i < pattern.length; i += 1) {
    if (pattern[i] !== WILDCARD && pattern[i] !== segments[i]) return null;
  }
  return segments.slice(pattern.length);
}

/** A scalar value as text, with a class for its JSON type. */
function scalar(value) {
  const type = value === null ? 'null' : typeof value;
  return h('span', { class: `value json-${type}` }, compact(value));
}

function isContainer(value) {
  return value !== null && typeof value === 'object';
}

function sizeText(value) {
  return Array.isArray(value) ? `[${value.length}]` : `{${Object.keys(value).length}}`;
}

function entries(value) {
  return Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
}

/**
 * A source record as a tree of `<details open>`; each scalar is a
 * `button.node[data-path]` that calls `onPick(segments)` when chosen.
 */
export function sourceTree(value, onPick) {
  const build = (node, segments) => h('ul', { role: 'group' },
    entries(node).map(([key, child]) => {
      const at = [...segments, key];
      const label = h('span', { class: 'key' }, typeof key === 'number' ? `[${key}]` : key);
      if (isContainer(child)) {
        return h('li', null, h('details', { open: true },
          h('summary', null, label, ' ', h('span', { class: 'muted' }, sizeText(child))),
          build(child, at)));
      }
      return h('li', null, h('button', {
        type: 'button',
        class: 'node',
        'data-path': pathOf(at),
        title: `Use ${pathOf(at)}`,
        onclick: () => onPick(at),
      }, label, ': ', scalar(child)));
    }));
  if (!isContainer(value)) {
    return h('div', { class: 'tree' }, h('button', {
      type: 'button', class: 'node', 'data-path': '$', onclick: () => onPick([]),
    }, scalar(value)));
  }
  return h('div', { class: 'tree' }, build(value, []));
}

/**
 * Shows only the values of a source tree whose key, path or value contains `text`
 * (every value when it is empty), and the branches that hold them.
 */
export function filterTree(tree, text) {
  const needle = text.trim().toLowerCase();
  for (const button of tree.querySelectorAll('button.node')) {
    const hay = `${button.dataset.path} ${button.textContent}`.toLowerCase();
    button.parentElement.hidden = needle !== '' && !hay.includes(needle);
  }
  const branches = [...tree.querySelectorAll('details')].reverse();
  for (const details of branches) {
    const visible = details.querySelector(':scope > ul > li:not([hidden])');
    details.parentElement.hidden = needle !== '' && !visible;
  }
}

/** The path of a preview change without its record index: `[0].vendor.name` → `vendor.name`. */
export function recordPath(changePath) {
  return changePath.replace(/^\[\d+\]\.?/, '');
}

/**
 * A unified record, read-only: each node is an `<li data-path>` (`vendor.name`,
 * `lines[1].quantity`), with class `changed` when `changed` (a Set of such paths)
 * names it.
 */
export function valueTree(value, changed = new Set()) {
  const node = (key, child, path) => {
    const label = h('span', { class: 'key' }, typeof key === 'number' ? `[${key}]` : key);
    const mark = changed.has(path) ? 'changed' : null;
    if (isContainer(child) && Object.keys(child).length > 0) {
      return h('li', { 'data-path': path, class: mark },
        label, ' ', h('span', { class: 'muted' }, sizeText(child)), build(child, path));
    }
    return h('li', { 'data-path': path, class: mark ? `leaf ${mark}` : 'leaf' },
      label, ': ', isContainer(child) ? h('span', { class: 'value' }, compact(child)) : scalar(child));
  };
  const build = (container, path) => h('ul', null, entries(container).map(([key, child]) => {
    const at = typeof key === 'number' ? `${path}[${key}]` : (path ? `${path}.${key}` : key);
    return node(key, child, at);
  }));
  if (!isContainer(value)) return h('div', { class: 'vtree' }, scalar(value));
  return h('div', { class: 'vtree' }, build(value, ''));
}
