#!/usr/bin/env python3
"""Runs a jq program over NDJSON records with the jq library that the `jq` Python package
bundles (a newer jq than Debian's), for bench/run:

    python libjq.py PROGRAM_FILE [INPUT.ndjson]

The program is compiled once and run over the whole input (stdin without a file) in one
call. Each result is serialized by jq itself (`tojson`, compact): the package would
otherwise turn every result into Python objects and dump them with Python's json, and
that is not jq's work.
"""

import sys

import jq


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: libjq.py PROGRAM_FILE [INPUT.ndjson]")
    with open(sys.argv[1]) as f:
        # The program may end in a comment: the closing parenthesis goes on a line of its own.
        program = jq.compile("(\n" + f.read() + "\n) | tojson")
    if len(sys.argv) == 3:
        with open(sys.argv[2]) as f:
            text = f.read()
    else:
        text = sys.stdin.read()
    out = sys.stdout
    for line in program.input_text(text):
        out.write(line)
        out.write("\n")


if __name__ == "__main__":
    main()
