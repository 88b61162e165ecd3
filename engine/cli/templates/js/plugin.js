// The `{{name}}` Crosswalk transform plugin, in JavaScript.
//
// Build it into a WebAssembly component, from this directory, and check that Crosswalk
// can load it:
//
//   npm install && npm run build
//   crosswalk plugin check {{name}}.wasm
//
// A mapping calls a function by the plugin's name and the function's name:
//
//   overrides:
//     - target: vendor.name
//       path: $.ZZ1_SupplierName_PDH
//       transforms: [{plugin: {{name}}, function: prefix, args: {prefix: "PO-"}}]
//
// To make it yours, change the functions below: `field(spec, fn)` declares a function
// of one value, `record(spec, fn)` one of a whole record. `crosswalk-plugin.js` (the
// SDK) says more.

import { plugin, field, InvalidInput } from './crosswalk-plugin.js';

// The JSON Schema of the arguments a rule gives, checked when a mapping is compiled.
const PREFIX_ARGS = {
  type: 'object',
  properties: { prefix: { type: 'string', description: 'the text to put first' } },
  required: ['prefix'],
  additionalProperties: false,
};

/** `value` if it is text; else the call fails with a message the mapping shows. */
function text(value) {
  if (typeof value !== 'string') {
    throw new InvalidInput(`expected text, got ${JSON.stringify(value)}`);
  }
  return value;
}

// The interface Crosswalk calls.
export const transform = plugin({
  name: '{{name}}',
  version: '0.1.0',
  functions: {
    // `inverse` names the function that undoes this one: Crosswalk calls it to write a
    // unified value back to the source system. Without one, the field is read-only.
    prefix: field(
      { description: 'Puts `prefix` before a text.', args: PREFIX_ARGS, inverse: 'unprefix' },
      (value, args) => {
        if (value === null) return null;
        const result = args.prefix + text(value);
        console.log(`prefix: "${value}" -> "${result}"`); // goes to the connection's log
        return result;
      },
    ),

    unprefix: field(
      { description: 'Takes `prefix` off the front of a text (the inverse of `prefix`).', args: PREFIX_ARGS },
      (value, args) => {
        if (value === null) return null;
        if (!text(value).startsWith(args.prefix)) {
          throw new InvalidInput(`${JSON.stringify(value)} does not start with ${JSON.stringify(args.prefix)}`);
        }
        return value.slice(args.prefix.length);
      },
    ),
  },
});
