//! Runs a VRL program over NDJSON records, for bench/run:
//!
//!     crosswalk-bench-vrl PROGRAM.vrl [INPUT.ndjson]
//!
//! The program is compiled once; each line of the input (stdin without a file) is one
//! event, remapped by the program and written as one line of compact JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use vrl::compiler::runtime::Runtime;
use vrl::compiler::{TargetValue, TimeZone, state::RuntimeState};
use vrl::value::{Secrets, Value};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crosswalk-bench-vrl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, input) = match args.as_slice() {
        [program] => (program, None),
        [program, input] => (program, Some(input)),
        _ => return Err("usage: crosswalk-bench-vrl PROGRAM.vrl [INPUT.ndjson]".into()),
    };
    let source = std::fs::read_to_string(program).map_err(|e| format!("{program}: {e}"))?;
    let functions = vrl::stdlib::all();
    let compiled = vrl::compiler::compile(&source, &functions)
        .map_err(|diagnostics| vrl::diagnostic::Formatter::new(&source, diagnostics).to_string())?;
    let reader: Box<dyn BufRead> = match input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).map_err(|e| format!("{path}: {e}"))?,
        )),
        None => Box::new(BufReader::new(io::stdin().lock())),
    };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut runtime = Runtime::new(RuntimeState::default());
    let timezone = TimeZone::default();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut target = TargetValue {
            value,
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        };
        runtime
            .resolve(&mut target, &compiled.program, &timezone)
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        runtime.clear();
        serde_json::to_writer(&mut out, &target.value).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}
