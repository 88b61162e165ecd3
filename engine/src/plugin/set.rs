//! The plugins a mapping may call, and the instances one batch of records uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CallCounts, Limits, Plugin, PluginError, PluginInstance};

/// A plugin bound to a mapping, with the limits it runs under there.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// Its limits in this binding.
    pub limits: Limits,
}

/// The plugins a mapping may call, by name.
#[derive(Debug, Clone, Default)]
pub struct PluginSet {
    bindings: BTreeMap<String, Binding>,
}

impl PluginSet {
    /// No plugins.
    pub fn new() -> PluginSet {
        PluginSet::default()
    }

    /// Binds `plugin` under its name, replacing a plugin of the same name.
    pub fn insert(&mut self, plugin: Arc<Plugin>, limits: Limits) -> Option<Binding> {
        self.bindings
            .insert(plugin.name().to_owned(), Binding { plugin, limits })
    }

    /// The binding of the plugin called `name`.
    pub fn get(&self, name: &str) -> Result<&Binding, PluginError> {
        self.bindings
            .get(name)
            .ok_or_else(|| PluginError::UnknownPlugin {
                plugin: name.to_owned(),
                hint: if self.bindings.is_empty() {
                    "; none is loaded (the command line loads plugins with `--plugin FILE`, the service binds them with `PUT …/mappings/{entity}/plugins`)".into()
                } else {
                    format!(
                        "; the loaded plugins are {}",
                        self.bindings.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
            })
    }

    /// Whether no plugin is bound.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The bindings, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }
}

/// The plugin instances of one request or batch: created on first use, dropped with
/// the session, so no state outlives it.
pub struct Session {
    bindings: Vec<Binding>,
    instances: Vec<Option<PluginInstance>>,
}

impl Session {
    /// A session over the plugins of a compiled mapping, by slot.
    pub fn new(bindings: &[Binding]) -> Session {
        Session {
            bindings: bindings.to_vec(),
            instances: bindings.iter().map(|_| None).collect(),
        }
    }

    /// The instance of the plugin in `slot`.
    pub fn instance(&mut self, slot: usize) -> &mut PluginInstance {
        let binding = &self.bindings[slot];
        self.instances[slot].get_or_insert_with(|| binding.plugin.instance(binding.limits))
    }

    /// The log lines of every instance, each prefixed with its plugin's name.
    pub fn take_log(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for instance in self.instances.iter_mut().flatten() {
            let name = instance.plugin().name().to_owned();
            lines.extend(
                instance
                    .take_log()
                    .into_iter()
                    .map(|l| format!("plugin {name}: {l}")),
            );
        }
        lines
    }

    /// How each plugin's calls ended, by plugin name; the counts start again from zero.
    pub fn take_calls(&mut self) -> Vec<(String, CallCounts)> {
        self.instances
            .iter_mut()
            .flatten()
            .map(|i| (i.plugin().name().to_owned(), i.take_calls()))
            .filter(|(_, calls)| calls.total() > 0)
            .collect()
    }
}
