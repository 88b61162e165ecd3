// A Crosswalk transform plugin in JavaScript, built into a WebAssembly component with
// componentize-js (`npm run build`). It shows that the plugin interface serves other
// languages than Rust: it implements the same `crosswalk:plugin@0.1.0` world.
//
// `e164` writes a phone number in E.164 form (+<country code><number>), whatever way
// the source system's users typed it: "(312) 555-0199", "0049 30 1234567",
// "+44 20 7946 0958 ext. 12". Numbers without a country code get `default_country_code`.
//
//   - target: phone
//     path: $.PrimaryPhoneNumber
//     transforms: [{plugin: phone, function: e164, args: {default_country_code: "1"}}]

import { log } from 'crosswalk:plugin/host@0.1.0';

const ARGS_SCHEMA = {
  type: 'object',
  properties: {
    default_country_code: {
      type: 'string',
      pattern: '^[1-9][0-9]{0,2}$',
      description: 'the country calling code of numbers written without one, e.g. "1" or "49"',
    },
    trunk_prefix: {
      type: 'string',
      pattern: '^[0-9]?$',
      description: 'the national trunk prefix dropped before adding the country code (default "0"; "" for none)',
    },
    on_invalid: { enum: ['error', 'keep', 'null'] },
  },
  additionalProperties: false,
};

/** The E.164 form of `raw`, or null when it cannot be one. */
function e164(raw, args) {
  // An extension ("ext. 12", "x12", "#12") is not part of the number.
  const number = raw.replace(/\s*(ext\.?|x|#)\s*\d+\s*$/i, '');
  let digits = number.replace(/[^\d+]/g, '');
  if (digits.startsWith('+')) {
    digits = digits.slice(1);
  } else if (digits.startsWith('00')) {
    digits = digits.slice(2);
  } else {
    const country = args.default_country_code;
    if (!country) return null;
    const trunk = args.trunk_prefix ?? '0';
    if (trunk && digits.startsWith(trunk)) digits = digits.slice(trunk.length);
    // A North American number may be written with its country code but no +.
    if (!(country === '1' && digits.length === 11 && digits.startsWith('1'))) {
      digits = country + digits;
    }
  }
  if (digits.includes('+') || digits.length < 8 || digits.length > 15 || digits.startsWith('0')) {
    return null;
  }
  return '+' + digits;
}

function invalidInput(message) {
  return { tag: 'invalid-input', val: message };
}

export const transform = {
  describe() {
    return {
      name: 'phone',
      version: '1.0.0',
      functions: [
        {
          name: 'e164',
          description: 'A phone number in E.164 form (+<country code><number>).',
          kind: 'field',
          argsSchema: JSON.stringify(ARGS_SCHEMA),
        },
      ],
    };
  },

  callField(fn, valueText, argsText) {
    if (fn !== 'e164') throw { tag: 'unknown-function', val: fn };
    const value = JSON.parse(valueText);
    const args = JSON.parse(argsText);
    if (value === null) return 'null';
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw invalidInput(`a phone number is text, not ${JSON.stringify(value)}`);
    }
    const result = e164(String(value), args);
    if (result !== null) return JSON.stringify(result);
    switch (args.on_invalid ?? 'error') {
      case 'keep':
        log('warn', `kept ${JSON.stringify(value)}: not a phone number`);
        return valueText;
      case 'null':
        return 'null';
      default:
        throw invalidInput(`${JSON.stringify(value)} is not a phone number in any form this plugin reads`);
    }
  },

  callRecords(fn, records, _args) {
    return records.map(() => ({ tag: 'err', val: { tag: 'unknown-function', val: fn } }));
  },
};
