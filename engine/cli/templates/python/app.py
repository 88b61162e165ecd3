"""The `{{name}}` Crosswalk transform plugin, in Python.

Build it into a WebAssembly component, from this directory (needs
`pip install componentize-py`), and check that Crosswalk can load it:

    componentize-py -d wit -w plugin componentize app -o {{name}}.wasm
    crosswalk plugin check {{name}}.wasm

A mapping calls a function by the plugin's name and the function's name:

    overrides:
      - target: vendor.name
        path: $.ZZ1_SupplierName_PDH
        transforms: [{plugin: {{name}}, function: prefix, args: {prefix: "PO-"}}]

To make it yours, change the functions below: `@plugin.field` declares a function of
one value, `@plugin.record` one of a whole record; its docstring's first paragraph
describes it. `crosswalk_plugin.py` (the SDK) says more.
"""

import json

from crosswalk_plugin import InvalidInput, Plugin

plugin = Plugin("{{name}}", "0.1.0")

# The JSON Schema of the arguments a rule gives, checked when a mapping is compiled.
PREFIX_ARGS = {
    "type": "object",
    "properties": {"prefix": {"type": "string", "description": "the text to put first"}},
    "required": ["prefix"],
    "additionalProperties": False,
}


def show(value):
    """`value` as JSON, for messages."""
    return json.dumps(value, ensure_ascii=False)


def text(value):
    """`value` if it is text; else the call fails with a message the mapping shows."""
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, got {show(value)}")
    return value


# `inverse` names the function that undoes this one: Crosswalk calls it to write a
# unified value back to the source system. Without one, the field is read-only.
@plugin.field(args=PREFIX_ARGS, inverse="unprefix")
def prefix(value, args):
    """Puts `prefix` before a text."""
    if value is None:
        return None
    result = args["prefix"] + text(value)
    print(f'prefix: "{value}" -> "{result}"')  # print() goes to the connection's log
    return result


@plugin.field(args=PREFIX_ARGS)
def unprefix(value, args):
    """Takes `prefix` off the front of a text (the inverse of `prefix`)."""
    if value is None:
        return None
    if not text(value).startswith(args["prefix"]):
        raise InvalidInput(f"{show(value)} does not start with {show(args['prefix'])}")
    return value[len(args["prefix"]):]


# The class componentize-py looks for: it implements the plugin interface.
Transform = plugin.export()
