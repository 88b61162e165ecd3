#!/usr/bin/env node
// Runs a JSONata expression over NDJSON records, for bench/run:
//
//     node run.js EXPRESSION_FILE [INPUT.ndjson]
//
// The expression is compiled once and evaluated on every line of the input (stdin
// without a file); each result is written as one line of compact JSON. jsonata is
// found through NODE_PATH: bench/run installs this package's lock into the build cache.
"use strict";

const fs = require("fs");
const readline = require("readline");
const jsonata = require("jsonata");

async function main() {
  const [program, input] = process.argv.slice(2);
  if (!program) {
    console.error("usage: node run.js EXPRESSION_FILE [INPUT.ndjson]");
    process.exit(2);
  }
  const expression = jsonata(fs.readFileSync(program, "utf8"));
  const lines = readline.createInterface({
    input: input ? fs.createReadStream(input) : process.stdin,
    crlfDelay: Infinity,
  });
  let out = [];
  let size = 0;
  for await (const line of lines) {
    if (line.trim() === "") continue;
    // `evaluate` answers a Promise in jsonata 2.
    const result = await expression.evaluate(JSON.parse(line));
    const text = JSON.stringify(result === undefined ? null : result);
    out.push(text);
    size += text.length;
    if (size >= 1 << 20) {
      await write(out.join("\n") + "\n");
      out = [];
      size = 0;
    }
  }
  if (out.length) await write(out.join("\n") + "\n");
}

// Writes a chunk to stdout, waiting while its buffer is full.
function write(chunk) {
  return new Promise((resolve) => {
    if (process.stdout.write(chunk)) resolve();
    else process.stdout.once("drain", resolve);
  });
}

main().catch((err) => {
  console.error(`jsonata: ${err.message || err}`);
  process.exit(1);
});
