"""A Crosswalk transform plugin in Python: phone numbers in E.164 form.

The Python port of `plugins/phone-js` (the same plugin name, and `e164` with the same
arguments, results and errors), plus `digits`, written with the Python SDK
(`plugins/sdk-python`) against the 0.2.0 world. Build it, from this directory, with
componentize-py (`pip install componentize-py`), and check it:

    componentize-py -d ../../wit/crosswalk-plugin@0.2.0 -w plugin componentize -p . -p ../sdk-python app -o phone.wasm
    crosswalk plugin check phone.wasm

Run its tests with `python3 -m unittest` (they need componentize-py too, for the
bindings).

`e164` writes a phone number in E.164 form (+<country code><number>), whatever way the
source system's users typed it: "(312) 555-0199", "0049 30 1234567",
"+44 20 7946 0958 ext. 12". Numbers without a country code get `default_country_code`.
It has no inverse (the original formatting cannot be recovered), so a field it converts
is read-only in writes:

  - target: phone
    path: $.PrimaryPhoneNumber
    transforms: [{plugin: phone, function: e164, args: {default_country_code: "1"}}]

`digits` keeps only the digits of a number, without its extension: "(312) 555-0199
ext. 12" gives "3125550199".
"""

import json
import re

from crosswalk_plugin import InvalidInput, Level, Plugin, log

plugin = Plugin("phone", "1.0.0")

E164_ARGS = {
    "type": "object",
    "properties": {
        "default_country_code": {
            "type": "string",
            "pattern": "^[1-9][0-9]{0,2}$",
            "description": 'the country calling code of numbers written without one, e.g. "1" or "49"',
        },
        "trunk_prefix": {
            "type": "string",
            "pattern": "^[0-9]?$",
            "description": 'the national trunk prefix dropped before adding the country code (default "0"; "" for none)',
        },
        "on_invalid": {"enum": ["error", "keep", "null"]},
    },
    "additionalProperties": False,
}

# An extension ("ext. 12", "x12", "#12") is not part of the number. `[0-9]`, not `\d`:
# Python's `\d` also matches other scripts' digits, JavaScript's does not.
EXTENSION = re.compile(r"\s*(ext\.?|x|#)\s*[0-9]+\s*\Z", re.IGNORECASE)
NOT_DIGIT_OR_PLUS = re.compile(r"[^0-9+]")


def to_json(value):
    """`value` as JavaScript's JSON.stringify writes it, for messages."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def phone_text(value):
    """The text of a phone number given as text or as a number; else invalid input."""
    # bool is an int in Python, not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(f"a phone number is text, not {to_json(value)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3125550199.0 is the number 3125550199, as in JavaScript
    return str(value)


def to_e164(raw, args):
    """The E.164 form of `raw`, or None when it cannot be one."""
    number = EXTENSION.sub("", raw, count=1)
    digits = NOT_DIGIT_OR_PLUS.sub("", number)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        country = args.get("default_country_code")
        if not country:
            return None
        trunk = args.get("trunk_prefix")
        if trunk is None:
            trunk = "0"
        if trunk and digits.startswith(trunk):
            digits = digits[len(trunk):]
        # A North American number may be written with its country code but no +.
        if not (country == "1" and len(digits) == 11 and digits.startswith("1")):
            digits = country + digits
    if "+" in digits or len(digits) < 8 or len(digits) > 15 or digits.startswith("0"):
        return None
    return "+" + digits


@plugin.field(args=E164_ARGS)
def e164(value, args):
    """A phone number in E.164 form (+<country code><number>)."""
    if value is None:
        return None
    result = to_e164(phone_text(value), args)
    if result is not None:
        return result
    on_invalid = args.get("on_invalid", "error")
    if on_invalid == "keep":
        log(Level.WARN, f"kept {to_json(value)}: not a phone number")
        return value
    if on_invalid == "null":
        return None
    raise InvalidInput(f"{to_json(value)} is not a phone number in any form this plugin reads")


@plugin.field
def digits(value, args):
    """The digits of a phone number, without its extension or any other character."""
    if value is None:
        return None
    return re.sub(r"[^0-9]", "", EXTENSION.sub("", phone_text(value), count=1))


Transform = plugin.export()
