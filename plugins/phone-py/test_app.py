"""Tests of the phone plugin and, through it, of the Python SDK's call handling.

Run from this directory with `python3 -m unittest`. They import `app.py` as plain
Python: the bindings it needs (`wit_world`, `componentize_py_types`) are generated
into a temporary directory with componentize-py, and `host.log` is replaced by a list.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
WIT = os.path.join(HERE, "..", "..", "wit", "crosswalk-plugin@0.2.0")
SDK = os.path.join(HERE, "..", "sdk-python")


def setUpModule():
    global app, host, types, Err, Ok, LOGS, _bindings
    _bindings = tempfile.TemporaryDirectory()
    subprocess.run(
        ["componentize-py", "-d", WIT, "-w", "plugin", "bindings", _bindings.name],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sys.path[:0] = [_bindings.name, SDK, HERE]
    from componentize_py_types import Err, Ok  # noqa: F401
    from wit_world.imports import host, types

    LOGS = []
    host.log = lambda level, message: LOGS.append((level, message))
    import app


def tearDownModule():
    _bindings.cleanup()


def field(function, value, args):
    """Calls `call-field` as the host does: JSON text in, JSON text (or Err) out."""
    return app.Transform().call_field(function, json.dumps(value), json.dumps(args))


class E164(unittest.TestCase):
    def test_forms(self):
        us = {"default_country_code": "1"}
        de = {"default_country_code": "49"}
        self.assertEqual(field("e164", "(312) 555-0199", us), '"+13125550199"')
        self.assertEqual(field("e164", "1 312 555 0199", us), '"+13125550199"')
        self.assertEqual(field("e164", "030 1234567", de), '"+49301234567"')
        self.assertEqual(field("e164", "0049 30 1234567", us), '"+49301234567"')
        self.assertEqual(field("e164", "+44 20 7946 0958 ext. 12", us), '"+442079460958"')
        self.assertEqual(field("e164", 3125550199, us), '"+13125550199"')
        self.assertEqual(field("e164", None, us), "null")

    def test_invalid(self):
        with self.assertRaises(Err) as e:
            field("e164", "x12", {"default_country_code": "1"})
        self.assertEqual(
            e.exception.value,
            types.Error_InvalidInput('"x12" is not a phone number in any form this plugin reads'),
        )
        with self.assertRaises(Err) as e:
            field("e164", True, {})
        self.assertEqual(e.exception.value, types.Error_InvalidInput("a phone number is text, not true"))
        self.assertEqual(field("e164", "x12", {"on_invalid": "null"}), "null")

    def test_keep_logs_a_warning(self):
        LOGS.clear()
        self.assertEqual(field("e164", "n/a", {"on_invalid": "keep"}), '"n/a"')
        self.assertEqual(LOGS, [(host.Level.WARN, 'kept "n/a": not a phone number')])

    def test_digits(self):
        self.assertEqual(field("digits", "(312) 555-0199 ext. 12", {}), '"3125550199"')
        self.assertEqual(field("digits", None, {}), "null")


class Calls(unittest.TestCase):
    def test_describe(self):
        info = app.Transform().describe()
        self.assertEqual((info.name, info.version), ("phone", "1.0.0"))
        self.assertEqual([(f.name, f.kind, f.inverse) for f in info.functions], [
            ("e164", types.FunctionKind.FIELD, None),
            ("digits", types.FunctionKind.FIELD, None),
        ])

    def test_unknown_function(self):
        with self.assertRaises(Err) as e:
            field("nope", "1", {})
        self.assertEqual(e.exception.value, types.Error_UnknownFunction("nope"))
        # A field function called as a record function is unknown too, per record.
        self.assertEqual(
            app.Transform().call_records("e164", ["{}", "{}"], "{}"),
            [Err(types.Error_UnknownFunction("e164"))] * 2,
        )

    def test_text_that_is_not_json(self):
        with self.assertRaises(Err) as e:
            app.Transform().call_field("e164", "(312", "{}")
        self.assertIsInstance(e.exception.value, types.Error_InvalidInput)
        self.assertTrue(e.exception.value.value.startswith("the value is not JSON: "))
        with self.assertRaises(Err) as e:
            app.Transform().call_field("e164", '"1"', "{")
        self.assertIsInstance(e.exception.value, types.Error_InvalidArguments)

    def test_unexpected_exception_is_invalid_input(self):
        # `default_country_code` is a string by the schema; an int reaches the
        # plugin only if the host did not check, and fails in `country + digits`.
        with self.assertRaises(Err) as e:
            field("e164", "3125550199", {"default_country_code": 1})
        self.assertEqual(
            e.exception.value,
            types.Error_InvalidInput("TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
        )


if __name__ == "__main__":
    unittest.main()
