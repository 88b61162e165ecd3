// views/mapping-editor.js: the rule editor of the Mapping page (#editor).
//
// It edits one target: its JSONPath (evaluated live against the sample with
// POST /v1/jsonpath, errors shown with their position), its transform chain (as JSON,
// with a picker of the built-in transforms and of the bound plugins' field
// functions), and its default. Its buttons stage an override entry for the target,
// a `disable`, or the removal of the target's override (back to the default).
//
// A nested rule (`lines.unit_price`) reads each element its parent selects, so its
// path is relative to that element: values picked in the sample tree are made
// relative to it, and paths are evaluated against the first such element.

import { post } from '../api.js';
import { h, badge, compact, copy, pretty, replace, sameJson, debounce, field, withCode } from '../dom.js';
import { pathOf, wildcardOf, parseSimplePath, relativeTo } from '../tree.js';
import { transformCatalog, pluginInfo } from './common.js';

export function createEditor(ctx, sampler) {
  let target = null;
  let contextPromise = Promise.resolve(undefined);
  let pattern = [];
  let evaluation = 0;

  const title = h('h2', { id: 'editor-title', tabindex: '-1' }, 'Edit a rule');
  const about = h('div', { class: 'editor-about' });
  const problems = h('div', { id: 'editor-problems', role: 'alert', class: 'alert', hidden: true });
  const pathInput = h('input', { id: 'rule-path', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: 'false', placeholder: '$.AddressName' });
  const marker = h('pre', { id: 'path-marker', class: 'path-marker', 'aria-hidden': 'true', hidden: true });
  const suggestions = h('div', { id: 'path-suggestions', class: 'suggestions', hidden: true });
  const result = h('div', { id: 'path-result', class: 'path-result', 'aria-live': 'polite' });
  const contextNote = h('p', { class: 'hint', hidden: true });
  const transforms = h('textarea', { id: 'rule-transforms', class: 'mono', rows: 4, spellcheck: 'false' });
  const picker = h('select', { id: 'transform-picker' });
  const pickerHelp = h('div', { id: 'transform-help', class: 'hint' });
  const defaultInput = h('input', { id: 'rule-default', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: 'false' });
  const message = h('div', { id: 'editor-message', role: 'status', class: 'notice', hidden: true });
  const parentNote = h('p', { class: 'hint', hidden: true },
    'This target holds nested rules: transforms and a default go on its nested targets.');

  const say = (text, kind = 'notice') => {
    message.className = kind;
    message.textContent = text;
    message.hidden = !text;
  };

  const element = h('section', { id: 'editor', class: 'card editor', hidden: true, 'aria-labelledby': 'editor-title' },
    title, about, problems,
    field('JSONPath', pathInput),
    marker, suggestions, result, contextNote,
    field('Transforms (a JSON array of steps)', transforms),
    parentNote,
    h('div', { class: 'picker' },
      h('label', { for: 'transform-picker' }, 'Add a transform'),
      h('div', { class: 'inline-controls' }, picker,
        h('button', { type: 'button', id: 'add-transform', class: 'secondary', onclick: addTransform }, 'Add')),
      pickerHelp),
    field('Default (a JSON value, used when the result is null; blank for none)', defaultInput),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'apply-rule', onclick: apply }, 'Stage change'),
      h('button', { type: 'button', id: 'disable-field', class: 'secondary', onclick: disable }, 'Disable field'),
      h('button', { type: 'button', id: 'restore-field', class: 'secondary', onclick: restore }, 'Restore default'),
      h('button', { type: 'button', id: 'close-editor', class: 'secondary', onclick: close }, 'Close')),
    message);

  // The picker's entries, by option value.
  const choices = new Map();
  fillPicker().catch((error) => { pickerHelp.textContent = `The transforms could not be listed: ${error.message}`; });

  const evaluateSoon = debounce(() => evaluate(), 250);
  pathInput.addEventListener('input', () => {
    suggestFor(parseSimplePath(pathInput.value));
    marker.hidden = true;
    evaluateSoon();
  });
  picker.addEventListener('change', describeChoice);

  /** The resolved rule of a target (or a bare one for a target the mapping lacks). */
  function ruleOf(t) {
    const flat = ctx.rules.get(t);
    return flat ? flat.rule : { target: t, origin: t.startsWith('custom_fields.') ? 'custom' : 'override' };
  }

  /** The path a rule reads once the staged changes apply. */
  function effectivePath(t) {
    const entry = ctx.proposedEntry(t);
    if (entry && entry.path !== undefined) return entry.path;
    return ruleOf(t).path;
  }

  /** The enclosing rules of a target that have a path, outermost first. */
  function pathAncestors(t) {
    const parts = t.split('.');
    const out = [];
    for (let i = 1; i < parts.length; i += 1) {
      const prefix = parts.slice(0, i).join('.');
      if (ctx.rules.has(prefix) && effectivePath(prefix)) out.push(prefix);
    }
    return out;
  }

  /** Finds the element the target's paths read, and the pattern picked paths are made relative to. */
  function computeContext() {
    const ancestors = pathAncestors(target);
    pattern = [];
    for (const a of ancestors) {
      const segments = parseSimplePath(effectivePath(a));
      if (!segments) {
        pattern = null;
        break;
      }
      pattern.push(...segments);
    }
    if (ancestors.length) {
      const inner = ancestors[ancestors.length - 1];
      contextNote.textContent = `This rule reads each element that ${inner} selects (${effectivePath(inner)}): in its path, $ is the element. It is evaluated against the first one.`;
      contextNote.hidden = false;
    } else {
      contextNote.hidden = true;
    }
    const sample = ctx.sample();
    if (sample === undefined) {
      contextPromise = Promise.resolve(undefined);
      return;
    }
    contextPromise = (async () => {
      let doc = sample;
      for (const a of ancestors) {
        const answer = await post('/v1/jsonpath', { path: effectivePath(a), document: doc });
        let value = answer.singular ? answer.values[0] : answer.values;
        if (Array.isArray(value)) [value] = value;
        doc = value === undefined ? null : value;
      }
      return doc;
    })();
    contextPromise.catch(() => {});
  }

  /** Evaluates the path against the sample (or the element of a nested rule). */
  async function evaluate() {
    const turn = ++evaluation;
    const path = pathInput.value.trim();
    result.classList.remove('invalid', 'valid');
    if (!path) {
      result.textContent = 'Type a JSONPath, or pick a value in the sample record.';
      return;
    }
    if (ctx.sample() === undefined) {
      result.textContent = 'Load a sample record to see what this path selects.';
      return;
    }
    try {
      let document;
      try {
        document = await contextPromise;
      } catch (error) {
        if (turn === evaluation) result.textContent = `The element this rule reads could not be found in the sample: ${error.message}`;
        return;
      }
      const answer = await post('/v1/jsonpath', { path, document });
      if (turn !== evaluation) return;
      result.classList.add('valid');
      const values = answer.values || [];
      const text = answer.singular
        ? `Selects ${clip(compact(values.length ? values[0] : null))}`
        : `Selects ${values.length} value${values.length === 1 ? '' : 's'}: ${clip(compact(values))}`;
      result.textContent = text;
    } catch (error) {
      if (turn !== evaluation) return;
      result.classList.add('invalid');
      const position = error.details && Number.isInteger(error.details.position) ? error.details.position : null;
      result.textContent = problemText({ message: error.message, position });
      if (position !== null) showMarker(path, position);
    }
  }

  /** Points at a 1-based character position under the path. */
  function showMarker(path, position) {
    const chars = Array.from(path);
    const at = Math.max(0, Math.min(position - 1, chars.length));
    marker.textContent = `${path}\n${' '.repeat(at)}^ position ${position}`;
    marker.hidden = false;
  }

  /** Shows the exact and the every-element form of a path that goes through an index. */
  function suggestFor(segments) {
    if (!segments || !segments.some((s) => typeof s === 'number')) {
      suggestions.hidden = true;
      suggestions.replaceChildren();
      return;
    }
    const button = (path, what) => h('button', {
      type: 'button', class: 'suggestion', 'data-path': path, title: what,
      onclick: () => {
        pathInput.value = path;
        marker.hidden = true;
        evaluate();
      },
    }, path);
    replace(suggestions,
      h('span', { class: 'hint' }, 'This element only, or every element:'),
      button(pathOf(segments), 'only this element'),
      button(wildcardOf(segments), 'every element (each index as [*])'));
    suggestions.hidden = false;
  }

  /** A value picked in the sample tree. */
  function pick(segments) {
    if (!target) {
      sampler.hint(`${pathOf(segments)}: open a rule with Edit (or add a custom field) to use this path.`);
      return;
    }
    let use = segments;
    if (pattern === null) {
      say('This rule reads the elements of a path the console cannot follow: check that the picked path is relative to its element.', 'warn');
    } else if (pattern.length) {
      const relative = relativeTo(pattern, segments);
      if (relative) use = relative;
      else say('This value is outside the elements this rule reads: its path is relative to each element.', 'warn');
    }
    pathInput.value = pathOf(use);
    marker.hidden = true;
    suggestFor(use);
    evaluate();
    pathInput.focus({ preventScroll: true });
  }

  /** Opens the editor on a target. */
  function open(t) {
    target = t;
    const rule = ruleOf(t);
    const change = ctx.staged.get(t);
    const entry = change && change.kind === 'set' ? change.entry : {};
    pathInput.value = entry.path ?? rule.path ?? '';
    const steps = entry.transforms ?? rule.transforms ?? [];
    transforms.value = steps.length ? pretty(steps) : '[]';
    const value = entry.default !== undefined ? entry.default : rule.default;
    defaultInput.value = value === undefined || value === null ? '' : JSON.stringify(value);
    const isParent = Array.isArray(rule.rules);
    transforms.disabled = isParent;
    defaultInput.disabled = isParent;
    parentNote.hidden = !isParent;
    replace(title, 'Edit ', h('code', null, t));
    picker.value = '';
    describeChoice();
    drawAbout(rule);
    say('');
    marker.hidden = true;
    suggestFor(parseSimplePath(pathInput.value));
    computeContext();
    refresh();
    element.hidden = false;
    element.scrollIntoView({ block: 'nearest' });
    pathInput.focus({ preventScroll: true });
    evaluate();
  }

  function drawAbout(rule) {
    const info = ctx.fieldInfo(target);
    const readOnly = ctx.readOnly.get(target);
    let source = null;
    if (rule.const !== undefined) source = ['Its source is the constant ', h('code', null, compact(rule.const)), '; a path replaces it.'];
    if (Array.isArray(rule.coalesce)) source = ['Its source is the first non-empty of ', rule.coalesce.map((p, i) => [i ? ', ' : '', h('code', null, p)]), '; a path replaces them.'];
    replace(about,
      h('p', { class: 'meta' }, badge(rule.origin || 'default', `origin-${rule.origin || 'default'}`), ' ',
        info ? `${info.type}${info.required ? ', required by the model' : ''}` : 'not in the model',
        readOnly ? [' · read-only for writes: ', withCode(readOnly)] : ''),
      source ? h('p', { class: 'hint' }, source) : null,
      rule.description ? h('p', { class: 'hint' }, withCode(rule.description)) : null);
  }

  function close() {
    target = null;
    element.hidden = true;
    evaluation += 1;
  }

  /** Redraws what depends on the page's state: this target's problems. */
  function refresh() {
    if (!target) return;
    const mine = ctx.problems.filter((p) => p.target === target);
    problems.hidden = mine.length === 0;
    replace(problems, mine.map((p) => h('p', { class: 'rule-error' }, problemText(p))));
  }

  /** The sample changed: paths are evaluated against the new one. */
  function sampleChanged() {
    if (!target) return;
    computeContext();
    evaluate();
  }

  /** Parses the transforms field: a JSON array (blank: none). */
  function readTransforms() {
    const text = transforms.value.trim();
    if (!text) return [];
    let steps;
    try {
      steps = JSON.parse(text);
    } catch (error) {
      throw new Error(`The transforms are not valid JSON: ${error.message}`);
    }
    if (!Array.isArray(steps)) throw new Error('The transforms must be a JSON array of steps, such as ["trim", {"round": 2}].');
    return steps;
  }

  /** Parses the default field: a JSON value, or undefined when blank. */
  function readDefault() {
    const text = defaultInput.value.trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new Error('The default must be a JSON value: text in double quotes ("like this"), a number, true, false or null.');
    }
  }

  /**
   * Stages the target's override entry: the committed entry (if any, without its
   * `disable`), with each key the editor shows set when it differs from the resolved
   * rule. An entry left with nothing to change is no override at all.
   */
  function apply() {
    const rule = ruleOf(target);
    let steps;
    let fallback;
    try {
      steps = readTransforms();
      fallback = readDefault();
    } catch (error) {
      say(error.message, 'error-text');
      return;
    }
    const committed = ctx.committedEntry(target);
    const entry = { ...copy(committed || {}), target };
    delete entry.disable;
    const path = pathInput.value.trim();
    if (path !== (rule.path ?? '')) {
      if (path) {
        entry.path = path;
        delete entry.const;
        delete entry.coalesce;
      } else {
        delete entry.path;
      }
    }
    if (!Array.isArray(rule.rules)) {
      if (!sameJson(steps, rule.transforms ?? [])) entry.transforms = steps;
      if (!sameJson(fallback, rule.default ?? undefined)) {
        if (fallback !== undefined) {
          entry.default = fallback;
        } else if (committed && committed.default !== undefined) {
          delete entry.default;
        } else {
          say('An override cannot remove the default mapping’s default, only replace it: give another value.', 'error-text');
          return;
        }
      }
    }
    const changes = Object.keys(entry).length > 1;
    if (!ctx.rules.has(target)) {
      // A target the mapping does not have yet (a new custom field) needs a source.
      ctx.stage(target, { kind: 'set', entry });
      if (entry.path) say('Staged. Preview it on the sample, then save.');
      else say('Staged, but it has no source yet: give it a JSONPath.', 'warn');
      return;
    }
    if (!changes) {
      if (committed) {
        ctx.stage(target, { kind: 'restore' });
        say('Staged: the connection’s override of this rule is removed, so it maps as shipped.');
      } else {
        ctx.unstage(target);
        say('Nothing changed: the rule is as shipped.');
      }
      return;
    }
    if (committed && sameJson(entry, committed)) {
      ctx.unstage(target);
      say('This is the saved version of the rule: nothing to stage.');
      return;
    }
    ctx.stage(target, { kind: 'set', entry });
    say('Staged. Preview it on the sample, then save.');
  }

  function disable() {
    if (!ctx.rules.has(target)) {
      say('This field is not mapped yet, so there is nothing to disable: remove its staged change instead.', 'warn');
      return;
    }
    ctx.stage(target, { kind: 'disable', entry: { target, disable: true } });
    say('Staged: the field will map to null.');
  }

  function restore() {
    if (ctx.committedEntry(target)) {
      ctx.stage(target, { kind: 'restore' });
      say(ctx.rules.get(target) && ctx.rules.get(target).rule.origin === 'custom'
        ? 'Staged: the custom field will be removed.'
        : 'Staged: the field goes back to the default mapping.');
    } else if (ctx.staged.has(target)) {
      ctx.unstage(target);
      say('The staged change is removed: the field has no override.');
    } else {
      say('This field has no override: it already maps as the default does.');
    }
  }

  /** Fills the picker: built-in transforms, then the field functions of bound plugins. */
  async function fillPicker() {
    replace(picker, h('option', { value: '' }, 'Loading transforms…'));
    const groups = [];
    try {
      const catalog = await transformCatalog();
      groups.push(h('optgroup', { label: 'Built-in transforms' }, catalog.map((t) => {
        choices.set(`builtin:${t.name}`, { step: exampleStep(t.example, t.name), summary: t.summary, arguments: t.arguments });
        return h('option', { value: `builtin:${t.name}` }, `${t.name} — ${t.summary}`);
      })));
    } catch (error) {
      pickerHelp.textContent = `The built-in transforms could not be listed: ${error.message}`;
    }
    const plugins = await Promise.all((ctx.mapping.plugins || []).map((b) => pluginInfo(b.sha256).catch(() => null)));
    for (const info of plugins.filter(Boolean)) {
      const name = info.plugin ? info.plugin.name : info.name;
      const fields = (info.functions || []).filter((f) => f.kind !== 'record');
      if (!fields.length) continue;
      groups.push(h('optgroup', { label: `Plugin ${name}` }, fields.map((f) => {
        const value = `plugin:${name}:${f.name}`;
        choices.set(value, {
          step: { plugin: name, function: f.name, args: {} },
          summary: f.description,
          arguments: f.args_schema ? `JSON Schema \`${compact(f.args_schema)}\`` : null,
          inverse: f.inverse,
        });
        return h('option', { value }, `${name}.${f.name}`);
      })));
    }
    replace(picker, h('option', { value: '' }, 'Choose a transform…'), groups);
  }

  function describeChoice() {
    const choice = choices.get(picker.value);
    if (!choice) {
      pickerHelp.textContent = '';
      return;
    }
    replace(pickerHelp,
      choice.summary ? h('div', null, withCode(choice.summary)) : null,
      h('div', null, choice.arguments ? ['Arguments: ', withCode(choice.arguments)] : 'No arguments.'),
      choice.inverse !== undefined ? h('div', null, choice.inverse ? `Undone in writes by ${choice.inverse}.` : 'No inverse: the field becomes read-only for writes.') : null,
      h('div', null, 'Add inserts ', h('code', null, compact(choice.step)), choice.arguments ? ': change its arguments as needed.' : '.'));
  }

  /** Appends the chosen transform's example step to the chain. */
  function addTransform() {
    const choice = choices.get(picker.value);
    if (!choice) {
      say('Choose a transform to add first.', 'error-text');
      return;
    }
    let steps;
    try {
      steps = readTransforms();
    } catch (error) {
      say(error.message, 'error-text');
      return;
    }
    steps.push(copy(choice.step));
    transforms.value = pretty(steps);
    say('');
    transforms.focus();
  }

  return { element, open, close, pick, refresh, sampleChanged };
}

/** A catalog example as a step: a JSON value, or JSON text of one, or a bare name. */
function exampleStep(example, name) {
  if (example === undefined || example === null) return name;
  if (typeof example !== 'string') return example;
  try {
    return JSON.parse(example);
  } catch {
    return example;
  }
}

/** Long JSON cut for display. */
function clip(text, max = 1500) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A problem's text, with its position when the message does not say it. */
export function problemText(problem) {
  if (problem.position !== null && problem.position !== undefined && !/position \d+/.test(problem.message)) {
    return `${problem.message} (at position ${problem.position})`;
  }
  return problem.message;
}
