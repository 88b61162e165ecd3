//! The plugins a mapping may call, and the instances one batch of records uses.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::any::Any;

use super::{Budget, CallCounts, Capacity, Demand, Instance, Limits, LogLine, Plugin, PluginError};

/// Instances of a binding that finished sessions left for the next ones, at most
/// this many: as many as a connection's requests that run at once under a busy load
/// find (a session uses one at a time); the host bounds them all together too.
pub const IDLE_PER_BINDING: usize = 8;

/// A plugin bound to a mapping, with the limits it runs under there.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The plugin.
    pub plugin: Arc<dyn Plugin>,
    /// Its limits in this binding.
    pub limits: Limits,
    /// Instances that earlier sessions of this binding (and of its clones: one
    /// compiled mapping of one connection) left for reuse, when the plugin allows it
    /// ([`Instance::park`]). Dropped with the binding: a mapping that changes starts
    /// with fresh instances.
    idle: Arc<IdleInstances>,
}

/// The parked instances of a binding.
#[derive(Default)]
struct IdleInstances(Mutex<Vec<Box<dyn Instance>>>);

impl std::fmt::Debug for IdleInstances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |v| v.len());
        write!(f, "{n} idle")
    }
}

impl Binding {
    /// `plugin` under `limits`, with no idle instance yet.
    pub fn new(plugin: Arc<dyn Plugin>, limits: Limits) -> Binding {
        Binding {
            plugin,
            limits,
            idle: Arc::default(),
        }
    }

    /// How many instances are parked for reuse.
    pub fn idle_instances(&self) -> usize {
        self.idle.0.lock().map_or(0, |v| v.len())
    }
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
    pub fn insert(&mut self, plugin: Arc<dyn Plugin>, limits: Limits) -> Option<Binding> {
        self.bindings
            .insert(plugin.name().to_owned(), Binding::new(plugin, limits))
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

/// The plugin instances of one request or batch: created on first use (or taken from
/// those an earlier session of the same binding parked), and parked or dropped with
/// the session. At most one instance per slot is alive at a time (an instance that
/// traps is dropped before the next one is made), which is what a [`Capacity`]
/// leases.
pub struct Session {
    bindings: Vec<Binding>,
    instances: Vec<Option<Box<dyn Instance>>>,
    budget: Arc<Budget>,
    /// The capacity the instances are leased under; kept until they are dropped.
    /// Declared last: fields drop in order, so the instances go first.
    _lease: Option<Arc<dyn Any + Send + Sync>>,
}

impl Session {
    /// A session over the plugins of a compiled mapping, by slot, leased from no
    /// share and without a budget: for the command line and for tests.
    pub fn new(bindings: &[Binding]) -> Session {
        Session {
            bindings: bindings.to_vec(),
            instances: bindings.iter().map(|_| None).collect(),
            budget: Arc::new(Budget::unlimited()),
            _lease: None,
        }
    }

    /// A session of a request that holds `grant`: its instances are the grant's
    /// lease, its calls spend a fresh budget of the grant's, and stop when the grant
    /// is cancelled. The grant must lease at least what the bindings need.
    pub fn granted(bindings: &[Binding], grant: &dyn Capacity) -> Session {
        let need = Demand::of(bindings);
        let leased = grant.demand();
        assert!(
            need.instances <= leased.instances && need.memory_bytes <= leased.memory_bytes,
            "a session needs {need:?} but its grant leases {leased:?}"
        );
        Session {
            bindings: bindings.to_vec(),
            instances: bindings.iter().map(|_| None).collect(),
            budget: Arc::new(grant.budget()),
            _lease: Some(grant.lease()),
        }
    }

    /// The instance of the plugin in `slot`: one its binding parked, or a new one.
    pub fn instance(&mut self, slot: usize) -> &mut dyn Instance {
        let binding = &self.bindings[slot];
        let budget = &self.budget;
        self.instances[slot]
            .get_or_insert_with(|| {
                let parked = binding.idle.0.lock().ok().and_then(|mut idle| idle.pop());
                match parked {
                    Some(mut instance) => {
                        instance.unpark(Arc::clone(budget));
                        instance
                    }
                    None => Arc::clone(&binding.plugin).open(binding.limits, Arc::clone(budget)),
                }
            })
            .as_mut()
    }

    /// Whether the request this session runs for was cancelled.
    pub fn cancelled(&self) -> bool {
        self.budget.cancel().is_cancelled()
    }

    /// The log lines of every instance, plugin by plugin.
    pub fn take_log(&mut self) -> Vec<LogLine> {
        self.instances
            .iter_mut()
            .flatten()
            .flat_map(|instance| instance.take_log())
            .collect()
    }

    /// How each plugin's calls ended, by plugin name; the counts start again from zero.
    pub fn take_calls(&mut self) -> Vec<(String, CallCounts)> {
        self.bindings
            .iter()
            .zip(&mut self.instances)
            .filter_map(|(b, i)| Some((b.plugin.name().to_owned(), i.as_mut()?.take_calls())))
            .filter(|(_, calls)| calls.total() > 0)
            .collect()
    }
}

/// A session's instances are parked for its bindings' next sessions when the plugin
/// allows it (an instance that trapped, was cancelled or grew old is not), the rest
/// dropped; then the lease goes.
impl Drop for Session {
    fn drop(&mut self) {
        for (binding, slot) in self.bindings.iter().zip(&mut self.instances) {
            let Some(mut instance) = slot.take() else {
                continue;
            };
            let Ok(mut idle) = binding.idle.0.lock() else {
                continue;
            };
            if idle.len() < IDLE_PER_BINDING && instance.park() {
                idle.push(instance);
            }
        }
    }
}
