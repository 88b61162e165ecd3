//! Write Crosswalk transform plugins in Rust.
//!
//! A plugin implements [`Plugin`] on JSON values and calls [`export!`]; this crate
//! holds the bindings of the `crosswalk:plugin@0.2.0` world (generated from `wit/`)
//! and turns the JSON text that crosses the boundary into [`Value`]s and back, so
//! that a plugin is only its logic:
//!
//! ```
//! use crosswalk_plugin_sdk::{Error, Function, Plugin, Value, json};
//!
//! struct Upper;
//!
//! impl Plugin for Upper {
//!     const NAME: &'static str = "upper";
//!     const VERSION: &'static str = "1.0.0";
//!
//!     fn functions() -> Vec<Function> {
//!         // Its own inverse: a write sends the upper-cased value, which reads back
//!         // the same. Without an inverse, a field it converts would be read-only.
//!         vec![
//!             Function::field("upper", "Upper-cases text.", json!({"type": "object"}))
//!                 .inverse("upper"),
//!         ]
//!     }
//!
//!     fn field(function: &str, value: Value, _args: &Value) -> Result<Value, Error> {
//!         match (function, value) {
//!             ("upper", Value::String(s)) => Ok(Value::String(s.to_uppercase())),
//!             (_, other) => Err(Error::InvalidInput(format!("expected text, got {other}"))),
//!         }
//!     }
//! }
//!
//! crosswalk_plugin_sdk::export!(Upper);
//! ```
//!
//! Build it as a component with `cargo build --target wasm32-wasip2 --release`.

pub use serde_json::{self, Value, json};

/// The generated bindings of the `plugin` world.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/crosswalk-plugin@0.2.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "crosswalk_plugin_sdk::bindings",
    });
}

pub use bindings::crosswalk::plugin::host::Level;
pub use bindings::crosswalk::plugin::types::{Error, FunctionKind};
use bindings::crosswalk::plugin::types::{FunctionInfo, PluginInfo};

/// One function a plugin offers.
#[derive(Debug, Clone)]
pub struct Function {
    /// The name rules call it by.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Field or record function.
    pub kind: FunctionKind,
    /// The JSON Schema of its static arguments.
    pub args_schema: Value,
    /// The function of this plugin, of the same kind, that undoes this one under the
    /// same arguments, for writes (see [`Function::inverse`]).
    pub inverse: Option<&'static str>,
}

impl Function {
    /// A field-level function.
    pub fn field(name: &'static str, description: &'static str, args_schema: Value) -> Self {
        Function {
            name,
            description,
            kind: FunctionKind::Field,
            args_schema,
            inverse: None,
        }
    }

    /// A record-level function.
    pub fn record(name: &'static str, description: &'static str, args_schema: Value) -> Self {
        Function {
            name,
            description,
            kind: FunctionKind::Record,
            args_schema,
            inverse: None,
        }
    }

    /// Names the function that undoes this one under the same arguments: Crosswalk
    /// calls it to write a unified value (or record) back to the source system.
    /// Without an inverse, a field this function converts is read-only, and a record
    /// function in a mapping's `pre` or `post` makes writes of the entity refused.
    /// A function may name itself (an idempotent normalisation, say).
    pub fn inverse(mut self, function: &'static str) -> Self {
        self.inverse = Some(function);
        self
    }
}

/// A transform plugin, on JSON values.
pub trait Plugin {
    /// The plugin's name, as rules refer to it.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;

    /// The functions it offers.
    fn functions() -> Vec<Function>;

    /// Converts one value with a field-level function.
    fn field(function: &str, _value: Value, _args: &Value) -> Result<Value, Error> {
        Err(Error::UnknownFunction(function.to_owned()))
    }

    /// Converts one record with a record-level function.
    fn record(function: &str, _record: Value, _args: &Value) -> Result<Value, Error> {
        Err(Error::UnknownFunction(function.to_owned()))
    }
}

/// Writes a line to the connection's log.
pub fn log(level: Level, message: &str) {
    bindings::crosswalk::plugin::host::log(level, message);
}

#[doc(hidden)]
pub fn describe<P: Plugin>() -> PluginInfo {
    PluginInfo {
        name: P::NAME.to_owned(),
        version: P::VERSION.to_owned(),
        functions: P::functions()
            .into_iter()
            .map(|f| FunctionInfo {
                name: f.name.to_owned(),
                description: f.description.to_owned(),
                kind: f.kind,
                args_schema: f.args_schema.to_string(),
                inverse: f.inverse.map(str::to_owned),
            })
            .collect(),
    }
}

fn parse(what: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("{what} is not JSON: {e}")))
}

std::thread_local! {
    /// The arguments of the last call, parsed: a mapping calls a function with the
    /// same arguments for every record of a batch, so they are parsed once.
    static ARGS: std::cell::RefCell<Option<(String, std::rc::Rc<Value>)>> =
        const { std::cell::RefCell::new(None) };
}

fn parsed_args(text: &str) -> Result<std::rc::Rc<Value>, Error> {
    ARGS.with(|cache| {
        if let Some((cached, args)) = &*cache.borrow()
            && cached == text
        {
            return Ok(std::rc::Rc::clone(args));
        }
        let args: Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArguments(format!("not JSON: {e}")))?;
        let args = std::rc::Rc::new(args);
        *cache.borrow_mut() = Some((text.to_owned(), std::rc::Rc::clone(&args)));
        Ok(args)
    })
}

#[doc(hidden)]
pub fn call_field<P: Plugin>(function: &str, value: &str, args: &str) -> Result<String, Error> {
    let args = parsed_args(args)?;
    let value = parse("the value", value)?;
    P::field(function, value, &args).map(|v| v.to_string())
}

#[doc(hidden)]
pub fn call_records<P: Plugin>(
    function: &str,
    records: Vec<String>,
    args: &str,
) -> Vec<Result<String, Error>> {
    let args = match parsed_args(args) {
        Ok(a) => a,
        Err(e) => return records.iter().map(|_| Err(e.clone())).collect(),
    };
    records
        .iter()
        .map(|r| P::record(function, parse("the record", r)?, &args).map(|v| v.to_string()))
        .collect()
}

/// Exports a [`Plugin`] as the component's `transform` interface.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CrosswalkExport;

        impl $crate::bindings::exports::crosswalk::plugin::transform::Guest for __CrosswalkExport {
            fn describe() -> $crate::bindings::crosswalk::plugin::types::PluginInfo {
                $crate::describe::<$plugin>()
            }
            fn call_field(
                function: String,
                value: String,
                args: String,
            ) -> Result<String, $crate::Error> {
                $crate::call_field::<$plugin>(&function, &value, &args)
            }
            fn call_records(
                function: String,
                records: Vec<String>,
                args: String,
            ) -> Vec<Result<String, $crate::Error>> {
                $crate::call_records::<$plugin>(&function, records, &args)
            }
        }

        // Only for the component: natively (where a plugin's unit tests run) the
        // exported symbol names, such as `crosswalk:plugin/transform@0.2.0#call-field`,
        // are not valid linker symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_plugin!(__CrosswalkExport with_types_in $crate::bindings);
    };
}
