//! The host side of the plugin worlds, generated from `wit/`: `crosswalk:plugin@0.2.0`
//! and `@0.1.0`, which plugins built before inverses existed implement. Kept private:
//! the rest of the engine sees [`super::Plugin`] and plain JSON values, and this module
//! hides which version a component speaks behind [`Pre`] and [`Bound`].

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::FunctionKind;
use super::sandbox::State;

/// `crosswalk:plugin@0.1.0`: no inverses.
pub(super) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/crosswalk-plugin@0.1.0",
        world: "plugin",
    });
}

/// `crosswalk:plugin@0.2.0`: functions may name their inverse.
pub(super) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/crosswalk-plugin@0.2.0",
        world: "plugin",
    });
}

/// What `describe` answered, whatever the version.
pub(super) struct Description {
    pub name: String,
    pub version: String,
    pub functions: Vec<Described>,
}

/// One function of a [`Description`].
pub(super) struct Described {
    pub name: String,
    pub description: String,
    pub kind: FunctionKind,
    pub args_schema: String,
    /// Always `None` under `@0.1.0`.
    pub inverse: Option<String>,
}

/// A plugin's own error, whatever the version.
pub(super) enum GuestError {
    UnknownFunction(String),
    InvalidArguments(String),
    InvalidInput(String),
}

/// A component checked against one version of the world, ready to instantiate.
pub(super) enum Pre {
    V0_1(v0_1::PluginPre<State>),
    V0_2(v0_2::PluginPre<State>),
}

/// One instance's exports. JSON text is `&String`, as the generated bindings take it
/// (`type json = string`).
pub(super) enum Bound {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

/// Converts the generated types of each version into the version-free ones.
macro_rules! convert_from {
    ($v:ident) => {
        impl From<$v::crosswalk::plugin::types::Error> for GuestError {
            fn from(e: $v::crosswalk::plugin::types::Error) -> GuestError {
                use $v::crosswalk::plugin::types::Error as E;
                match e {
                    E::UnknownFunction(m) => GuestError::UnknownFunction(m),
                    E::InvalidArguments(m) => GuestError::InvalidArguments(m),
                    E::InvalidInput(m) => GuestError::InvalidInput(m),
                }
            }
        }

        impl From<$v::crosswalk::plugin::types::FunctionKind> for FunctionKind {
            fn from(k: $v::crosswalk::plugin::types::FunctionKind) -> FunctionKind {
                use $v::crosswalk::plugin::types::FunctionKind as K;
                match k {
                    K::Field => FunctionKind::Field,
                    K::Record => FunctionKind::Record,
                }
            }
        }
    };
}

convert_from!(v0_1);
convert_from!(v0_2);

impl Pre {
    /// Checks the component against the version of the world whose `transform` it
    /// exports (the newest when it exports none, so that the error names what is
    /// missing from the current one).
    pub(super) fn new(pre: InstancePre<State>) -> wasmtime::Result<Pre> {
        let engine = pre.component().engine().clone();
        let exports_v0_1 = pre
            .component()
            .component_type()
            .exports(&engine)
            .any(|(name, _)| name == "crosswalk:plugin/transform@0.1.0");
        Ok(if exports_v0_1 {
            Pre::V0_1(v0_1::PluginPre::new(pre)?)
        } else {
            Pre::V0_2(v0_2::PluginPre::new(pre)?)
        })
    }

    /// The package version the component implements.
    pub(super) fn interface(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => "crosswalk:plugin@0.1.0",
            Pre::V0_2(_) => "crosswalk:plugin@0.2.0",
        }
    }

    pub(super) fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Bound> {
        Ok(match self {
            Pre::V0_1(pre) => Bound::V0_1(pre.instantiate(store)?),
            Pre::V0_2(pre) => Bound::V0_2(pre.instantiate(store)?),
        })
    }
}

impl Bound {
    pub(super) fn describe(&self, store: &mut Store<State>) -> wasmtime::Result<Description> {
        Ok(match self {
            Bound::V0_1(b) => {
                let info = b.crosswalk_plugin_transform().call_describe(store)?;
                Description {
                    name: info.name,
                    version: info.version,
                    functions: info
                        .functions
                        .into_iter()
                        .map(|f| Described {
                            name: f.name,
                            description: f.description,
                            kind: f.kind.into(),
                            args_schema: f.args_schema,
                            inverse: None,
                        })
                        .collect(),
                }
            }
            Bound::V0_2(b) => {
                let info = b.crosswalk_plugin_transform().call_describe(store)?;
                Description {
                    name: info.name,
                    version: info.version,
                    functions: info
                        .functions
                        .into_iter()
                        .map(|f| Described {
                            name: f.name,
                            description: f.description,
                            kind: f.kind.into(),
                            args_schema: f.args_schema,
                            inverse: f.inverse,
                        })
                        .collect(),
                }
            }
        })
    }

    pub(super) fn call_field(
        &self,
        store: &mut Store<State>,
        function: &str,
        value: &String,
        args: &String,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(match self {
            Bound::V0_1(b) => b
                .crosswalk_plugin_transform()
                .call_call_field(store, function, value, args)?
                .map_err(GuestError::from),
            Bound::V0_2(b) => b
                .crosswalk_plugin_transform()
                .call_call_field(store, function, value, args)?
                .map_err(GuestError::from),
        })
    }

    pub(super) fn call_records(
        &self,
        store: &mut Store<State>,
        function: &str,
        records: &[String],
        args: &String,
    ) -> wasmtime::Result<Vec<Result<String, GuestError>>> {
        Ok(match self {
            Bound::V0_1(b) => b
                .crosswalk_plugin_transform()
                .call_call_records(store, function, records, args)?
                .into_iter()
                .map(|r| r.map_err(GuestError::from))
                .collect(),
            Bound::V0_2(b) => b
                .crosswalk_plugin_transform()
                .call_call_records(store, function, records, args)?
                .into_iter()
                .map(|r| r.map_err(GuestError::from))
                .collect(),
        })
    }
}
