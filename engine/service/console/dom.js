// dom.js: small DOM helpers shared by every page of the console.
//
// `h(tag, attrs, ...children)` builds elements (text always goes in as text nodes,
// never as HTML), plus helpers for alerts, badges, times, JSON text, form fields,
// tables, confirming buttons and debouncing.

/**
 * Builds an element. `attrs` keys:
 * - `class`, `id`, `for`, `role`, `aria-*`, `data-*` and any other attribute: set as is;
 * - `onclick`, `oninput`, …: a function, added as an event listener;
 * - `hidden`, `disabled`, `checked`, `open`, `selected`, `required`, `multiple`: booleans;
 * - `value`: the element's value property.
 * Children are nodes, strings (added as text), arrays (flattened), or null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value') {
      el.value = value;
    } else if (BOOLEAN_PROPS.has(key)) {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

const BOOLEAN_PROPS = new Set(['hidden', 'disabled', 'checked', 'open', 'selected', 'required', 'multiple']);

/** Appends children (nodes, strings, arrays, or null) to `el`. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * An alert area (`role="alert"`), hidden while empty. `area.show(error, prefix)` shows
 * an API error with the service's own message; `area.text(message)` any message.
 */
export function alertArea(id) {
  const el = h('div', { id, role: 'alert', class: 'alert', hidden: true });
  el.show = (error, prefix) => {
    const message = error && error.message ? error.message : String(error);
    replace(el, prefix ? `${prefix} ${message}` : message);
    el.hidden = false;
  };
  el.text = (message) => {
    replace(el, message);
    el.hidden = false;
  };
  el.clear = () => {
    el.replaceChildren();
    el.hidden = true;
  };
  return el;
}

/** A status line (`role="status"`), hidden while empty. */
export function statusArea(id) {
  const el = h('div', { id, role: 'status', class: 'notice', hidden: true });
  el.text = (...message) => {
    replace(el, ...message);
    el.hidden = false;
  };
  el.clear = () => {
    el.replaceChildren();
    el.hidden = true;
  };
  return el;
}

/** The words people read for a connection status. */
const STATUS_WORDS = {
  healthy: 'healthy',
  degraded: 'degraded',
  needs_reauth: 'needs reauth',
  rate_limited: 'rate limited',
  unreachable: 'unreachable',
  circuit_open: 'breaker open',
};

/** A badge for a connection status (`needs_reauth` reads "needs reauth"). */
export function statusBadge(status, attrs = {}) {
  return h('span', { ...attrs, class: `badge status-${status}` }, STATUS_WORDS[status] || status);
}

/** A neutral badge, with an extra class for its colour. */
export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}`.trim() }, text);
}

/** A time for people: local date and time, or "—"; the exact value in `title`. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  return h('time', { datetime: iso, title: iso }, text);
}

/** JSON on one line. */
export function compact(value) {
  return value === undefined ? '' : JSON.stringify(value);
}

/** JSON on several lines. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/**
 * A dotted name or a JSONPath as text with line-break opportunities (`<wbr>`) before
 * each `.` and `[`, so that narrow table cells break it where it reads well.
 */
export function breakable(text) {
  return String(text).split(/(?<!^\$)(?=[.[])/).flatMap((part, i) => (i ? [document.createElement('wbr'), part] : [part]));
}

/** Deep equality of JSON values. */
export function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A deep copy of a JSON value. */
export function copy(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** Calls `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Wraps an async event handler so that nothing is left unhandled: a failure shows in
 * `alert` (an `alertArea`), or in the console's page-wide alert when none is given.
 * While it runs, `button` (if any) is disabled.
 */
export function action(fn, alert, button) {
  return async (event) => {
    if (event && event.type === 'submit') event.preventDefault();
    if (button) button.disabled = true;
    try {
      if (alert) alert.clear();
      await fn(event);
    } catch (error) {
      (alert || pageAlert()).show(error);
    } finally {
      if (button) button.disabled = false;
    }
  };
}

/** The page-wide alert of the layout. */
export function pageAlert() {
  return document.getElementById('page-alert');
}

/** A labelled form field: `<div class="field"><label for>…</label>control hint</div>`. */
export function field(label, control, hint) {
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('p', { class: 'hint' }, hint) : null);
}

/** `<option>`s from [value, label] pairs, with `selected` marking one value. */
export function options(pairs, selected) {
  return pairs.map(([value, label]) => h('option', { value, selected: value === selected }, label));
}

/** A table with a caption-less header row; `rows` are `<tr>`s. */
export function table(attrs, headers, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, headers.map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', null, rows)));
}

/**
 * A button that asks again before acting: the first click turns its text into
 * `confirmText`, the second runs `onConfirm`; leaving the button (or arming another in
 * `group`, an array shared between them) disarms it. An `aria-label` in `attrs` names
 * what it acts on, and asks to press again while armed.
 */
export function confirmButton(attrs, text, confirmText, onConfirm, group = []) {
  const button = h('button', { type: 'button', ...attrs }, text);
  const label = attrs['aria-label'];
  button.reset = () => {
    button.textContent = text;
    button.classList.remove('confirming');
    if (label) button.setAttribute('aria-label', label);
  };
  button.addEventListener('blur', button.reset);
  button.addEventListener('click', async () => {
    if (!button.classList.contains('confirming')) {
      group.forEach((other) => other !== button && other.reset());
      button.textContent = confirmText;
      button.classList.add('confirming');
      if (label) button.setAttribute('aria-label', `${label}: press again to confirm`);
      return;
    }
    button.reset();
    button.disabled = true;
    try {
      await onConfirm();
    } catch (error) {
      pageAlert().show(error);
    } finally {
      button.disabled = false;
    }
  });
  group.push(button);
  return button;
}

/** Text in which `backquoted` parts (as the service writes names and paths) become `<code>`. */
export function withCode(text) {
  return String(text).split('`').map((part, i) => (i % 2 ? h('code', null, part) : part));
}

/** Parses JSON typed by a person; `what` names it in the error ("The credentials"). */
export function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} could not be read as JSON: ${error.message}`);
  }
}

/** A byte count for people. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
