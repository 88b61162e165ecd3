// Write Crosswalk transform plugins in JavaScript.
//
// A plugin is a WebAssembly component that implements the `plugin` world of
// `wit/crosswalk-plugin@0.2.0/plugin.wit`. This module turns the JSON text that crosses
// the boundary into JavaScript values and back, and the plugin's failures into the
// world's `error` variant, so that a plugin is only its logic:
//
//   import { plugin, field, InvalidInput } from './crosswalk-plugin.js';
//
//   const PREFIX_ARGS = {
//     type: 'object',
//     properties: { prefix: { type: 'string' } },
//     required: ['prefix'],
//     additionalProperties: false,
//   };
//
//   export const transform = plugin({
//     name: 'greet',
//     version: '1.0.0',
//     functions: {
//       prefix: field({ description: 'Puts `prefix` before a text.', args: PREFIX_ARGS, inverse: 'unprefix' },
//         (value, args) => {
//           if (value === null) return null;
//           if (typeof value !== 'string') throw new InvalidInput(`expected text, got ${JSON.stringify(value)}`);
//           return args.prefix + value;
//         }),
//       unprefix: field({ ... }, (value, args) => ...),
//     },
//   });
//
// - `field(spec, fn)` declares a field function, `fn(value, args) => value`: `value` is
//   the rule's value so far, parsed (`null` for JSON null), `args` the rule's static
//   arguments (an object, `{}` when the rule gives none). It returns any value
//   `JSON.stringify` writes (not `undefined`).
// - `record(spec, fn)` declares a record function, `fn(record, args) => record`: one
//   record (an object) in, one out. Crosswalk sends records in batches; each record
//   succeeds or fails on its own.
// - `spec` may hold `description` (for people), `args` (the JSON Schema of the
//   arguments; by default none are allowed) and `inverse` (the function of the same
//   kind that undoes this one under the same arguments, for writes; without one a
//   field it converts is read-only). `field(fn)` is `field({}, fn)`.
// - Throw `InvalidInput` for a value that cannot be converted, and `InvalidArguments`
//   for arguments that do not fit; their message is what the mapping's error shows.
//   Anything else thrown becomes an `invalid-input` error reading `"TypeError: ..."`:
//   the call fails, the component does not trap.
// - `args` is parsed once per distinct arguments and frozen, since calls share it.
// - What a function returns is written with `JSON.stringify` (so NaN and Infinity
//   become null).
// - `log('warn', '...')` writes to the connection's log (levels: 'debug', 'info',
//   'warn', 'error'); so does `console.log`.
//
// Names (the plugin's and its functions') are 1 to 64 lower-case letters, digits, `-`
// or `_`, as Crosswalk requires; a wrong one throws when the module is evaluated, which
// componentize-js does while it builds.
//
// Build a component with componentize-js (`@bytecodealliance/componentize-js`), with
// this file next to the plugin and the WIT directory of the 0.2.0 world:
//
//   componentize-js --wit path/to/wit/crosswalk-plugin@0.2.0 --world-name plugin \
//     --disable http fetch-event --out greet.wasm plugin.js
//   crosswalk plugin check greet.wasm
//
// (`http` and `fetch-event` would import `wasi:http`, which Crosswalk refuses.) In a
// project made by `crosswalk plugin new greet --lang js`, that is `npm run build`.
// componentize-js 0.23 needs `@bytecodealliance/preview2-shim` 0.25.0 beside it as a
// devDependency: it imports it without declaring it, so `npm ci` would leave it out.

import { log as hostLog } from 'crosswalk:plugin/host@0.2.0';

const NAME = /^[a-z0-9_-]{1,64}$/;

// At most this many distinct argument texts are kept parsed (then the cache starts
// again): an instance serves one binding, whose rules give a few distinct `args`, for
// as long as the host keeps it (many requests, when it is reused).
const ARGS_CACHE_SIZE = 64;

// No arguments at all: the default schema of a function that does not say.
const NO_ARGS = { type: 'object', additionalProperties: false };

const SPEC_KEYS = new Set(['description', 'args', 'inverse']);

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

/**
 * Writes a line to the connection's log, at `level`: 'debug', 'info', 'warn' or 'error'.
 * (The host's own `log` would fail a wrong level with an empty error; this names it.)
 */
export function log(level, message) {
  if (!LEVELS.has(level)) {
    throw new TypeError(`log level must be 'debug', 'info', 'warn' or 'error', not ${JSON.stringify(level)}`);
  }
  hostLog(level, String(message));
}

/** The value or record cannot be converted; the message says why. */
export class InvalidInput extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidInput';
  }
}

/** The static arguments do not fit the function; the message says why. */
export class InvalidArguments extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidArguments';
  }
}

/** Declares a field function `fn(value, args) => value`. */
export function field(spec, fn) {
  return declare('field', spec, fn);
}

/** Declares a record function `fn(record, args) => record`. */
export function record(spec, fn) {
  return declare('record', spec, fn);
}

function declare(kind, spec, fn) {
  if (typeof spec === 'function' && fn === undefined) [spec, fn] = [{}, spec];
  if (typeof fn !== 'function') {
    throw new TypeError(`${kind}(spec, fn): fn must be a function, not ${typeof fn}`);
  }
  if (spec === null || typeof spec !== 'object') {
    throw new TypeError(`${kind}(spec, fn): spec must be an object, not ${JSON.stringify(spec)}`);
  }
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) {
      throw new TypeError(`${kind}(spec, fn): unknown key \`${key}\` (known: description, args, inverse)`);
    }
  }
  const description = spec.description ?? '';
  if (typeof description !== 'string') {
    throw new TypeError(`${kind}(spec, fn): description must be a string, not ${JSON.stringify(description)}`);
  }
  return { kind, fn, description, args: spec.args ?? NO_ARGS, inverse: spec.inverse };
}

function checkName(what, name) {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new Error(`${what} ${JSON.stringify(name)} must be 1 to 64 lower-case letters, digits, '-' or '_'`);
  }
}

/**
 * The `transform` interface of a plugin, for `export const transform = plugin({...})`.
 *
 * `functions` maps each function's name to a `field(...)` or `record(...)`. Checks the
 * names, the schemas and the inverses as Crosswalk does when it loads the plugin.
 */
export function plugin({ name, version, functions, ...rest }) {
  checkName('plugin name', name);
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new TypeError(
      `plugin ${JSON.stringify(name)}: unknown key \`${unknown[0]}\` (known: name, version, functions)`,
    );
  }
  if (typeof version !== 'string' || version === '') {
    throw new TypeError(
      `plugin ${JSON.stringify(name)}: the version must be a non-empty string, not ${JSON.stringify(version)}`,
    );
  }
  if (functions === null || typeof functions !== 'object') {
    throw new TypeError(
      `plugin ${JSON.stringify(name)}: functions must be an object of field(...) and record(...)`,
    );
  }
  const declared = new Map();
  for (const [fname, f] of Object.entries(functions)) {
    checkName('function name', fname);
    if (f === null || typeof f !== 'object' || !('kind' in f) || typeof f.fn !== 'function') {
      throw new TypeError(
        `function ${JSON.stringify(fname)}: declare it with field(spec, fn) or record(spec, fn)`,
      );
    }
    if (typeof f.args !== 'boolean' && (f.args === null || typeof f.args !== 'object' || Array.isArray(f.args))) {
      throw new TypeError(
        `function ${JSON.stringify(fname)}: args must be a JSON Schema (an object), not ${JSON.stringify(f.args)}`,
      );
    }
    if (f.inverse !== undefined) checkName(`function ${JSON.stringify(fname)}: inverse`, f.inverse);
    let argsSchema;
    try {
      argsSchema = JSON.stringify(f.args);
    } catch (e) {
      throw new TypeError(`function ${JSON.stringify(fname)}: args is not JSON: ${e.message}`);
    }
    declared.set(fname, { ...f, name: fname, argsSchema });
  }
  for (const f of declared.values()) {
    if (f.inverse === undefined) continue;
    const g = declared.get(f.inverse);
    if (g === undefined) {
      throw new Error(
        `function "${f.name}" names "${f.inverse}" as its inverse, ` +
          `but the plugin declares no function "${f.inverse}"`,
      );
    }
    if (g.kind !== f.kind) {
      throw new Error(
        `function "${f.name}" names "${f.inverse}" as its inverse, ` +
          `but "${f.inverse}" is a ${g.kind} function and "${f.name}" a ${f.kind} one`,
      );
    }
  }

  const info = {
    name,
    version,
    functions: [...declared.values()].map((f) => ({
      name: f.name,
      description: f.description,
      kind: f.kind,
      argsSchema: f.argsSchema,
      inverse: f.inverse,
    })),
  };
  const argsCache = new Map();

  function lookup(kind, fn) {
    const f = declared.get(fn);
    if (f === undefined || f.kind !== kind) throw new Failure({ tag: 'unknown-function', val: fn });
    return f;
  }

  // A mapping passes the same arguments for every record of a batch: parse once.
  function parsedArgs(text) {
    let args = argsCache.get(text);
    if (args === undefined) {
      try {
        args = deepFreeze(JSON.parse(text));
      } catch (e) {
        throw new Failure({ tag: 'invalid-arguments', val: `not JSON: ${e.message}` });
      }
      if (argsCache.size >= ARGS_CACHE_SIZE) argsCache.clear();
      argsCache.set(text, args);
    }
    return args;
  }

  return {
    describe() {
      return info;
    },

    callField(fn, valueText, argsText) {
      try {
        const f = lookup('field', fn);
        const args = parsedArgs(argsText);
        return run(f, parse('the value', valueText), args, false);
      } catch (e) {
        // componentize-js makes a thrown `{tag, val}` the `err` of the result.
        throw e instanceof Failure ? e.error : e;
      }
    },

    callRecords(fn, records, argsText) {
      let f;
      let args;
      try {
        f = lookup('record', fn);
        args = parsedArgs(argsText);
      } catch (e) {
        if (e instanceof Failure) return records.map(() => ({ tag: 'err', val: e.error }));
        throw e;
      }
      return records.map((text) => {
        try {
          return { tag: 'ok', val: run(f, parse('the record', text), args, true) };
        } catch (e) {
          if (e instanceof Failure) return { tag: 'err', val: e.error };
          throw e;
        }
      });
    },
  };
}

/** Carries a WIT error out of the SDK's own code. */
class Failure {
  constructor(error) {
    this.error = error;
  }
}

function invalidInput(message) {
  return new Failure({ tag: 'invalid-input', val: message });
}

function parse(what, text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidInput(`${what} is not JSON: ${e.message}`);
  }
}

/** Calls a declared function and serialises what it returns, as JSON text. */
function run(f, value, args, isRecord) {
  let result;
  try {
    result = f.fn(value, args);
  } catch (e) {
    if (e instanceof InvalidInput) throw invalidInput(e.message);
    if (e instanceof InvalidArguments) throw new Failure({ tag: 'invalid-arguments', val: e.message });
    // A plugin's bug is the call's error, not a trap.
    throw invalidInput(describeThrown(e));
  }
  if (isRecord && (result === null || typeof result !== 'object' || Array.isArray(result))) {
    throw invalidInput(`function "${f.name}" returned ${describeValue(result)}, not a record (an object)`);
  }
  let text;
  try {
    text = JSON.stringify(result);
  } catch (e) {
    throw invalidInput(`function "${f.name}" returned a value that is not JSON: ${describeThrown(e)}`);
  }
  if (text === undefined) {
    throw invalidInput(`function "${f.name}" returned ${describeValue(result)}, not a JSON value`);
  }
  return text;
}

function describeThrown(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  let text;
  try {
    text = JSON.stringify(e);
  } catch {
    // A cycle or a BigInt: String() below.
  }
  return `thrown ${text ?? String(e)}`;
}

function describeValue(v) {
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return 'an object';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint' || typeof v === 'symbol') return String(v);
  return JSON.stringify(v); // null, a string, a number or a boolean
}

function deepFreeze(v) {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
