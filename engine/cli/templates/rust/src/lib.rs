//! The `{{name}}` Crosswalk transform plugin, in Rust.
//!
//! Build it into a WebAssembly component (needs `rustup target add wasm32-wasip2`) and
//! check that Crosswalk can load it:
//!
//! ```sh
//! cargo build --release
//! crosswalk plugin check target/wasm32-wasip2/release/crosswalk_plugin_{{crate}}.wasm
//! ```
//!
//! A mapping calls a function by the plugin's name and the function's name:
//!
//! ```yaml
//! overrides:
//!   - target: vendor.name
//!     path: $.ZZ1_SupplierName_PDH
//!     transforms: [{plugin: {{name}}, function: prefix, args: {prefix: "PO-"}}]
//! ```
//!
//! To make it yours, change `functions` (what Crosswalk is told) and `field` (what the
//! functions do); a function of whole records goes in `Function::record` and `record`.
//! `sdk/src/lib.rs` (the SDK) says more.

use crosswalk_plugin_sdk::{Error, Function, Plugin, Value, json};

struct MyPlugin;

impl Plugin for MyPlugin {
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = "0.1.0";

    fn functions() -> Vec<Function> {
        // The JSON Schema of the arguments a rule gives, checked when a mapping is
        // compiled.
        let prefix_args = json!({
            "type": "object",
            "properties": {"prefix": {"type": "string", "description": "the text to put first"}},
            "required": ["prefix"],
            "additionalProperties": false,
        });
        vec![
            // `inverse` names the function that undoes this one: Crosswalk calls it to
            // write a unified value back to the source system. Without one, the field
            // is read-only.
            Function::field(
                "prefix",
                "Puts `prefix` before a text.",
                prefix_args.clone(),
            )
            .inverse("unprefix"),
            Function::field(
                "unprefix",
                "Takes `prefix` off the front of a text (the inverse of `prefix`).",
                prefix_args,
            ),
        ]
    }

    fn field(function: &str, value: Value, args: &Value) -> Result<Value, Error> {
        let text = match value {
            Value::Null => return Ok(Value::Null),
            Value::String(text) => text,
            // The message is what the mapping's error shows.
            other => return Err(Error::InvalidInput(format!("expected text, got {other}"))),
        };
        // Crosswalk checks `args` against the schema before any call, so `prefix` is text.
        let prefix = args["prefix"]
            .as_str()
            .ok_or_else(|| Error::InvalidArguments("`prefix` must be text".to_owned()))?;
        match function {
            "prefix" => {
                let result = format!("{prefix}{text}");
                // println! goes to the connection's log.
                println!("prefix: {text:?} -> {result:?}");
                Ok(Value::String(result))
            }
            "unprefix" => match text.strip_prefix(prefix) {
                Some(rest) => Ok(Value::String(rest.to_owned())),
                None => Err(Error::InvalidInput(format!(
                    "{} does not start with {}",
                    json!(text),
                    json!(prefix)
                ))),
            },
            _ => Err(Error::UnknownFunction(function.to_owned())),
        }
    }
}

crosswalk_plugin_sdk::export!(MyPlugin);
