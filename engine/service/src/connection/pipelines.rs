//! The hot-swapped pipelines of every connection.
//!
//! Every change goes through here: checked against the [`Quotas`], compiled, stored as
//! the next version, published; then the history beyond the versions kept is pruned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use arc_swap::ArcSwap;

use crate::quota::{LimitExceeded, Quotas};
use crate::store::{Connection, MappingVersion, PluginBinding, Store, StoreError, wait};
use crosswalk_core::mapping::{
    MapLimits, OverrideSpec, Plan, ResolvedMapping, SpecErrors, WritePlan,
};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{Limits, PluginError, PluginHost, PluginSet, PoolError};

/// What one connection runs for one entity: a compiled plan and the version it is.
#[derive(Debug)]
pub struct Pipeline {
    /// The mapping version (0: the system's default, never changed).
    pub version: u64,
    /// The compiled plan (sharing the rules it has in common with the system's
    /// default mapping with every other connection's).
    pub plan: Plan,
    /// The way back, for writes: the inverted rules and the read-only targets. Derived
    /// (and checked) when the pipeline compiles, then kept only where it calls
    /// plugins; others derive it again on their first write or `GET` of the mapping,
    /// since most connections are only read from.
    write: OnceLock<WritePlan>,
    /// The plugins the pipeline was compiled with, to derive `write` with.
    set: PluginSet,
    /// The connection's overrides this version holds.
    pub overrides: OverrideSpec,
    /// The plugins bound to this version.
    pub plugins: Vec<PluginBinding>,
}

impl Pipeline {
    /// The resolved mapping, with origins, as `GET …/mappings/{entity}` shows it:
    /// resolved again from the overrides, rather than kept for every connection.
    pub fn resolved(&self) -> ResolvedMapping {
        crosswalk_systems::resolve(
            self.plan.system(),
            self.plan.entity(),
            Some(&self.overrides),
        )
        .expect("the overrides resolved when the pipeline compiled")
    }

    /// The way back, for writes: the inverted rules and the read-only targets. Derived
    /// the first time, then kept: a connection written to is written to again.
    pub fn write(&self) -> &WritePlan {
        self.write.get_or_init(|| self.derive_write())
    }

    /// What `look` reads of the way back, without keeping it when it was not kept
    /// already: a mapping's answer (to a `GET` or a `PUT`) shows the read-only targets,
    /// and that should not make a connection hold a write plan (13 KiB for SAP's
    /// purchase orders) it may never write with.
    pub fn with_write<R>(&self, look: impl FnOnce(&WritePlan) -> R) -> R {
        match self.write.get() {
            Some(kept) => look(kept),
            None => look(&self.derive_write()),
        }
    }

    fn derive_write(&self) -> WritePlan {
        crosswalk_systems::write_plan(&self.resolved(), &self.set)
            .expect("the write plan was derived when the pipeline compiled")
    }

    fn new(
        version: u64,
        plan: Plan,
        write: WritePlan,
        set: PluginSet,
        overrides: OverrideSpec,
        plugins: Vec<PluginBinding>,
    ) -> Pipeline {
        let kept = OnceLock::new();
        if write.calls_plugins() {
            let _ = kept.set(write);
        }
        Pipeline {
            version,
            plan,
            write: kept,
            set,
            overrides,
            plugins,
        }
    }
}

/// Why a change was refused. Nothing was stored or published.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The overrides do not compile against the default mapping.
    #[error("{0}")]
    Invalid(#[from] SpecErrors),
    /// A bound plugin is not uploaded, does not load, or asks for limits over the ceiling.
    #[error("{0}")]
    Plugin(#[from] PluginError),
    /// The bound plugins ask for more than a tenant's share of the plugin pool (a
    /// binding's memory, or the mapping's plugins together).
    #[error("{0}")]
    Share(#[from] PoolError),
    /// A bound plugin version that this tenant has not uploaded.
    #[error("plugin version `{sha256}` is not uploaded (upload it with `POST /v1/plugins`)")]
    UnknownPlugin {
        /// Its sha256.
        sha256: String,
    },
    /// A rollback to a version that does not exist.
    #[error(
        "there is no version {version} of this mapping; the versions are 0 (the system's default) to {last}"
    )]
    UnknownVersion {
        /// The version asked for.
        version: u64,
        /// The last version.
        last: u64,
    },
    /// A conditional change (`If-Match`) made from a version that is no longer the
    /// current one. Nothing was stored.
    #[error(
        "the mapping is at version {current}, not {expected}: read it again and make the change on version {current}"
    )]
    VersionMismatch {
        /// The version the change was made from.
        expected: u64,
        /// The current version.
        current: u64,
    },
    /// A rollback to a version that was pruned from the history.
    #[error(
        "version {version} of this mapping was pruned: the history keeps versions {first} to {last} (the limit `max_versions_kept`)"
    )]
    PrunedVersion {
        /// The version asked for.
        version: u64,
        /// The oldest version kept.
        first: u64,
        /// The last version.
        last: u64,
    },
    /// The change would break a limit.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that loaded and compiled a pipeline panicked or was
    /// cancelled (the runtime shutting down).
    #[error("loading the mapping stopped: {message}")]
    Interrupted {
        /// The task's error.
        message: String,
    },
}

/// The mapping a change proposes to follow the current one.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The overrides.
    pub overrides: OverrideSpec,
    /// The plugins bound.
    pub plugins: Vec<PluginBinding>,
    /// The version it restores, for a rollback (0: the system's default).
    pub rollback_of: Option<u64>,
}

/// What a change starts from: the current version's document. It may no longer
/// compile (a rule tightened after it was stored): it can still be changed.
#[derive(Debug, Clone, Default)]
pub struct Base {
    /// Its version (0: the system's default).
    pub version: u64,
    /// Its overrides.
    pub overrides: OverrideSpec,
    /// The plugins bound to it.
    pub plugins: Vec<PluginBinding>,
}

impl Base {
    fn of(pipeline: &Pipeline) -> Base {
        Base {
            version: pipeline.version,
            overrides: pipeline.overrides.clone(),
            plugins: pipeline.plugins.clone(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The pipeline now current.
    pub pipeline: Arc<Pipeline>,
    /// Whether a new version was stored (`false`: the proposal was the current mapping).
    pub stored: bool,
}

type Key = (String, Entity);

/// The current pipeline of every (connection, entity), loaded on first use.
pub struct Pipelines {
    store: Arc<dyn Store>,
    host: Arc<PluginHost>,
    quotas: Quotas,
    /// What mapping may take, given to every plan compiled here.
    limits: MapLimits,
    slots: RwLock<HashMap<Key, Arc<Slot>>>,
    /// Each system's default pipeline of an entity, compiled once: the pipeline of
    /// every connection that has no version of its own, and the base whose compiled
    /// rules the others share.
    defaults: Mutex<HashMap<(String, Entity), DefaultPipeline>>,
    /// Orders the changes of stored versions that no longer compile (which have no
    /// slot to hold the change lock).
    unloadable: Mutex<()>,
}

/// A system's default mapping of an entity, resolved and compiled.
#[derive(Clone)]
struct DefaultPipeline {
    resolved: Arc<ResolvedMapping>,
    pipeline: Arc<Pipeline>,
}

/// One (connection, entity): its published pipeline, and a lock that orders changes so
/// that versions are published in the order they are stored.
struct Slot {
    current: ArcSwap<Pipeline>,
    changing: Mutex<()>,
    /// The connection it maps for (its system and tenant, which never change), to
    /// load it again when another replica stores a version.
    connection: Connection,
}

impl Pipelines {
    /// Pipelines over a store and a plugin host, under the default [`Quotas`], whose
    /// plans map under [`MapLimits::DEFAULT`].
    pub fn new(store: Arc<dyn Store>, host: Arc<PluginHost>) -> Pipelines {
        Pipelines {
            store,
            host,
            quotas: Quotas::DEFAULT,
            limits: MapLimits::DEFAULT,
            slots: RwLock::new(HashMap::new()),
            defaults: Mutex::new(HashMap::new()),
            unloadable: Mutex::new(()),
        }
    }

    /// The plugin host the pipelines load their plugins with.
    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Under these quotas: the size of a mapping, its bindings, the versions kept.
    pub fn with_quotas(mut self, quotas: Quotas) -> Pipelines {
        self.quotas = quotas;
        self
    }

    /// The same, with plans that map under `limits`.
    pub fn with_limits(mut self, limits: MapLimits) -> Pipelines {
        self.limits = limits;
        self
    }

    /// The pipeline a request uses now: one `Arc`, taken once per request.
    pub fn current(
        &self,
        connection: &Connection,
        entity: Entity,
    ) -> Result<Arc<Pipeline>, ChangeError> {
        Ok(self.slot(connection, entity)?.current.load_full())
    }

    /// The pipeline a request uses now, if it is compiled already: no store read, no
    /// compile.
    pub fn cached(&self, connection_id: &str, entity: Entity) -> Option<Arc<Pipeline>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(connection_id.to_owned(), entity))
            .map(|slot| slot.current.load_full())
    }

    /// [`Pipelines::current`] for async callers: a pipeline that is not compiled yet is
    /// read from the store and compiled, its plugins loaded, on the blocking pool (that
    /// takes milliseconds, and seconds for a large plugin), so that the async workers
    /// go on serving other requests meanwhile.
    pub async fn current_async(
        self: &Arc<Self>,
        connection: &Connection,
        entity: Entity,
    ) -> Result<Arc<Pipeline>, ChangeError> {
        if let Some(pipeline) = self.cached(&connection.id, entity) {
            return Ok(pipeline);
        }
        let (this, connection) = (Arc::clone(self), connection.clone());
        tokio::task::spawn_blocking(move || this.current(&connection, entity))
            .await
            .map_err(|e| ChangeError::Interrupted {
                message: e.to_string(),
            })?
    }

    /// Applies a change to the latest version: `edit` gets the current version and
    /// proposes the mapping that follows it; the proposal is validated and compiled,
    /// stored as the next version, then published. Changes of one (connection, entity)
    /// are applied one at a time, each to the version the one before it made, so that
    /// none is lost; with `expected`, the change is made only if the current version is
    /// that one. A proposal equal to the current mapping stores nothing. Returns once
    /// the next request will see the change.
    pub fn change(
        &self,
        connection: &Connection,
        entity: Entity,
        expected: Option<u64>,
        author: &str,
        edit: impl Fn(&Base) -> Result<Proposal, ChangeError>,
    ) -> Result<Changed, ChangeError> {
        let slot = match self.slot(connection, entity) {
            Ok(slot) => slot,
            Err(ChangeError::Store(e)) => return Err(ChangeError::Store(e)),
            // The stored version does not compile: it is changed from its document.
            Err(_) => return self.change_unloadable(connection, entity, expected, author, &edit),
        };
        let _ordered = slot.changing.lock().unwrap_or_else(|p| p.into_inner());
        // A stale slot (another process stored a version) is reloaded once.
        let mut reloaded = false;
        loop {
            let current = slot.current.load_full();
            if let Some(expected) = expected
                && expected != current.version
            {
                return Err(ChangeError::VersionMismatch {
                    expected,
                    current: current.version,
                });
            }
            let proposal = edit(&Base::of(&current))?;
            if proposal.overrides == current.overrides && proposal.plugins == current.plugins {
                return Ok(Changed {
                    pipeline: current,
                    stored: false,
                });
            }
            // Validate and compile before anything is stored: a bad change changes nothing.
            self.quotas
                .mapping(&proposal.overrides, &proposal.plugins)?;
            let mut pipeline = self.compile(
                connection,
                entity,
                &proposal.overrides,
                &proposal.plugins,
                0,
            )?;
            self.check_share(&pipeline)?;
            let stored = wait(self.store.append_mapping(
                &connection.id,
                entity,
                current.version,
                proposal.overrides,
                proposal.plugins,
                author,
                proposal.rollback_of,
            ));
            match stored {
                Ok(stored) => {
                    pipeline.version = stored.version;
                    let pipeline = Arc::new(pipeline);
                    slot.current.store(Arc::clone(&pipeline));
                    self.prune(connection, entity);
                    return Ok(Changed {
                        pipeline,
                        stored: true,
                    });
                }
                Err(StoreError::VersionMoved { last, .. }) if !reloaded => {
                    reloaded = true;
                    slot.current.store(self.load(connection, entity)?);
                    if let Some(expected) = expected {
                        return Err(ChangeError::VersionMismatch {
                            expected,
                            current: last,
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`Pipelines::change`] of a stored version that does not compile (so that no
    /// request has a slot for it): the change starts from the stored document, and
    /// what it proposes must compile, as every change must.
    fn change_unloadable(
        &self,
        connection: &Connection,
        entity: Entity,
        expected: Option<u64>,
        author: &str,
        edit: &dyn Fn(&Base) -> Result<Proposal, ChangeError>,
    ) -> Result<Changed, ChangeError> {
        let _ordered = self.unloadable.lock().unwrap_or_else(|p| p.into_inner());
        let base = match wait(self.store.mapping_history(&connection.id, entity))?.pop() {
            Some(stored) => Base {
                version: stored.version,
                overrides: stored.overrides,
                plugins: stored.plugins,
            },
            None => Base::default(),
        };
        if let Some(expected) = expected
            && expected != base.version
        {
            return Err(ChangeError::VersionMismatch {
                expected,
                current: base.version,
            });
        }
        let proposal = edit(&base)?;
        self.quotas
            .mapping(&proposal.overrides, &proposal.plugins)?;
        let mut pipeline = self.compile(
            connection,
            entity,
            &proposal.overrides,
            &proposal.plugins,
            base.version,
        )?;
        self.check_share(&pipeline)?;
        let stored = proposal.overrides != base.overrides || proposal.plugins != base.plugins;
        if stored {
            let appended = wait(self.store.append_mapping(
                &connection.id,
                entity,
                base.version,
                proposal.overrides,
                proposal.plugins,
                author,
                proposal.rollback_of,
            ))
            .map_err(|e| match e {
                StoreError::VersionMoved { last, .. } => ChangeError::VersionMismatch {
                    expected: base.version,
                    current: last,
                },
                e => e.into(),
            })?;
            pipeline.version = appended.version;
        }
        // Publish: into the slot a request may have loaded meanwhile, unless that one
        // holds a later version already.
        let pipeline = Arc::new(pipeline);
        let key = (connection.id.clone(), entity);
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        match slots.get(&key) {
            Some(slot) => {
                let _changing = slot.changing.lock().unwrap_or_else(|p| p.into_inner());
                if slot.current.load().version < pipeline.version {
                    slot.current.store(Arc::clone(&pipeline));
                }
            }
            None => {
                slots.insert(
                    key,
                    Arc::new(Slot {
                        current: ArcSwap::new(Arc::clone(&pipeline)),
                        changing: Mutex::new(()),
                        connection: connection.clone(),
                    }),
                );
            }
        }
        drop(slots);
        if stored {
            self.prune(connection, entity);
        }
        Ok(Changed { pipeline, stored })
    }

    /// Restores an earlier version (0: the system's default), as a new version, unless
    /// it is the current mapping already.
    pub fn rollback(
        &self,
        connection: &Connection,
        entity: Entity,
        version: u64,
        expected: Option<u64>,
        author: &str,
    ) -> Result<Changed, ChangeError> {
        self.change(connection, entity, expected, author, |current| {
            if version == 0 {
                return Ok(Proposal {
                    overrides: OverrideSpec::default(),
                    plugins: Vec::new(),
                    rollback_of: Some(0),
                });
            }
            let history = wait(self.store.mapping_history(&connection.id, entity))?;
            let first = history.first().map(|v| v.version);
            match history.into_iter().find(|v| v.version == version) {
                Some(old) => Ok(Proposal {
                    overrides: old.overrides,
                    plugins: old.plugins,
                    rollback_of: Some(version),
                }),
                None => match first {
                    Some(first) if (1..first).contains(&version) => {
                        Err(ChangeError::PrunedVersion {
                            version,
                            first,
                            last: current.version,
                        })
                    }
                    _ => Err(ChangeError::UnknownVersion {
                        version,
                        last: current.version,
                    }),
                },
            }
        })
    }

    /// Compiles a proposed change without storing or publishing it (for previews).
    pub fn preview(
        &self,
        connection: &Connection,
        entity: Entity,
        overrides: &OverrideSpec,
        plugins: &[PluginBinding],
    ) -> Result<Pipeline, ChangeError> {
        self.quotas.mapping(overrides, plugins)?;
        self.compile(connection, entity, overrides, plugins, 0)
    }

    /// The (connection, entity) pairs whose pipelines are loaded.
    pub fn loaded(&self) -> Vec<(String, Entity)> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Brings a loaded pipeline up to the last version stored (by another replica):
    /// compiled and published, unless the pipeline is that version or a later one
    /// already, so that what requests see never goes back. Answers the pipeline now
    /// current; `None` when no request has loaded this mapping yet (the first one
    /// loads the last version). Call it on the blocking pool.
    pub fn refresh(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Option<Arc<Pipeline>>, ChangeError> {
        let slot = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(connection_id.to_owned(), entity))
            .cloned();
        let Some(slot) = slot else {
            return Ok(None);
        };
        let _ordered = slot.changing.lock().unwrap_or_else(|p| p.into_inner());
        let held = slot.current.load_full();
        let last = wait(self.store.mapping_version(connection_id, entity))?;
        if last <= held.version {
            return Ok(Some(held));
        }
        let loaded = self.load(&slot.connection, entity)?;
        if loaded.version <= held.version {
            return Ok(Some(held));
        }
        slot.current.store(Arc::clone(&loaded));
        tracing::info!(connection = connection_id, %entity, from = held.version, to = loaded.version, "mapping reloaded");
        Ok(Some(loaded))
    }

    /// [`Pipelines::refresh`] for async callers: on the blocking pool.
    pub async fn refresh_async(
        self: &Arc<Self>,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Option<Arc<Pipeline>>, ChangeError> {
        let (this, id) = (Arc::clone(self), connection_id.to_owned());
        tokio::task::spawn_blocking(move || this.refresh(&id, entity))
            .await
            .map_err(|e| ChangeError::Interrupted {
                message: e.to_string(),
            })?
    }

    /// Forgets a deleted connection's pipelines.
    pub fn forget(&self, connection_id: &str) {
        self.slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _), _| c != connection_id);
    }

    /// Checks that a pipeline's plugins fit a tenant's share of the plugin pool: each
    /// binding's memory, and what a read (or a write) leases for its plugins together.
    /// Checked when a change is made, not when a stored version is loaded, so that an
    /// operator who shrinks the shares does not make mappings fail to load (their
    /// requests are refused with the limit instead).
    fn check_share(&self, pipeline: &Pipeline) -> Result<(), PoolError> {
        let pool = self.host.pool();
        let limits: Vec<Limits> = pipeline
            .plugins
            .iter()
            .map(|b| Limits::with(&b.limits))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        pool.check_share(pipeline.plan.plugin_demand(), &limits)?;
        if pipeline.plugins.is_empty() {
            return Ok(());
        }
        pool.check_share(pipeline.write().plugin_demand(), &[])
    }

    /// Prunes the history beyond the versions kept. The change is stored and published
    /// by then: a failure here is logged, and the next change prunes again.
    fn prune(&self, connection: &Connection, entity: Entity) {
        if let Err(e) = wait(self.store.prune_mapping_history(
            &connection.id,
            entity,
            self.quotas.max_versions_kept,
            self.quotas.max_history_bytes,
        )) {
            tracing::error!(connection = %connection.id, %entity, error = %e, "the mapping history was not pruned");
        }
    }

    fn slot(&self, connection: &Connection, entity: Entity) -> Result<Arc<Slot>, ChangeError> {
        let key = (connection.id.clone(), entity);
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(slot));
        }
        // Load the stored current version (or the default) outside the map's lock.
        let pipeline = self.load(connection, entity)?;
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key).or_insert_with(|| {
            Arc::new(Slot {
                current: ArcSwap::new(pipeline),
                changing: Mutex::new(()),
                connection: connection.clone(),
            })
        });
        Ok(Arc::clone(slot))
    }

    /// The stored current version, compiled (or the default, shared).
    fn load(&self, connection: &Connection, entity: Entity) -> Result<Arc<Pipeline>, ChangeError> {
        match wait(self.store.mapping_history(&connection.id, entity))?.pop() {
            Some(MappingVersion {
                version,
                overrides,
                plugins,
                ..
            }) => self
                .compile(connection, entity, &overrides, &plugins, version)
                .map(Arc::new),
            None => Ok(self.default(connection, entity)?.pipeline),
        }
    }

    /// The system's default pipeline of `entity`, compiled the first time it is asked
    /// for.
    fn default(
        &self,
        connection: &Connection,
        entity: Entity,
    ) -> Result<DefaultPipeline, ChangeError> {
        let key = (connection.system.as_str().to_owned(), entity);
        let mut defaults = self.defaults.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(default) = defaults.get(&key) {
            return Ok(default.clone());
        }
        let resolved = crosswalk_systems::resolve(connection.system.as_str(), entity, None)?;
        let set = PluginSet::new();
        let plan = Plan::compile(&resolved, &set)?.with_limits(self.limits);
        let write = crosswalk_systems::write_plan(&resolved, &set)?;
        let default = DefaultPipeline {
            resolved: Arc::new(resolved),
            pipeline: Arc::new(Pipeline::new(
                0,
                plan,
                write,
                set,
                OverrideSpec::default(),
                Vec::new(),
            )),
        };
        defaults.insert(key, default.clone());
        Ok(default)
    }

    fn compile(
        &self,
        connection: &Connection,
        entity: Entity,
        overrides: &OverrideSpec,
        plugins: &[PluginBinding],
        version: u64,
    ) -> Result<Pipeline, ChangeError> {
        let mut set = PluginSet::new();
        for binding in plugins {
            let Some((_, bytes)) = wait(self.store.plugin(&connection.tenant_id, &binding.sha256))?
            else {
                return Err(ChangeError::UnknownPlugin {
                    sha256: binding.sha256.clone(),
                });
            };
            let plugin = self.host.load(&bytes)?;
            set.insert(plugin, Limits::with(&binding.limits)?);
        }
        let resolved =
            crosswalk_systems::resolve(connection.system.as_str(), entity, Some(overrides))?;
        let base = self.default(connection, entity)?;
        let plan =
            Plan::compile_over(&resolved, &set, Some((&base.resolved, &base.pipeline.plan)))?
                .with_limits(self.limits);
        let write = crosswalk_systems::write_plan(&resolved, &set)?;
        Ok(Pipeline::new(
            version,
            plan,
            write,
            set,
            overrides.clone(),
            plugins.to_vec(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Mode, SledStore};
    use crosswalk_core::mapping::Format;
    use crosswalk_plugin_host::HostConfig;
    use serde_json::json;

    /// The pipelines call the store through [`wait`], as they do on the blocking pool:
    /// the test's thread enters a runtime (kept for the test's life) so that they can.
    fn enter_runtime() {
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        let runtime = RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap());
        std::mem::forget(runtime.enter());
    }

    fn setup(name: &str) -> (Pipelines, Connection, std::path::PathBuf) {
        enter_runtime();
        let dir =
            std::env::temp_dir().join(format!("crosswalk-pipelines-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
        let tenant = wait(store.create_tenant("Acme")).unwrap();
        let connection = wait(store.create_connection(
            &tenant.id,
            crosswalk_systems::SystemId::SapS4Hana,
            "SAP",
            Mode::Sandbox,
            None,
        ))
        .unwrap();
        let host = Arc::new(
            PluginHost::new(HostConfig {
                max_instances: 4,
                ..HostConfig::default()
            })
            .unwrap(),
        );
        (Pipelines::new(store, host), connection, dir)
    }

    fn overrides(yaml: &str) -> OverrideSpec {
        OverrideSpec::parse(yaml, Format::Yaml).unwrap()
    }

    /// An edit that replaces the overrides and keeps the plugins.
    fn put(overrides: OverrideSpec) -> impl Fn(&Base) -> Result<Proposal, ChangeError> {
        move |current| {
            Ok(Proposal {
                overrides: overrides.clone(),
                plugins: current.plugins.clone(),
                rollback_of: None,
            })
        }
    }

    #[test]
    fn a_change_is_seen_by_the_next_request_and_not_by_running_ones() {
        let (pipelines, connection, dir) = setup("swap");
        let source = json!({"PurchaseOrder": "1", "ZZ1_CostCenter_PDH": "CC-7"});
        let before = pipelines
            .current(&connection, Entity::PurchaseOrder)
            .unwrap();
        assert_eq!(before.version, 0);
        let custom = overrides(
            "overrides:\n  - target: custom_fields.cost_center\n    path: $.ZZ1_CostCenter_PDH\n",
        );
        let published = pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                None,
                "key_1",
                put(custom),
            )
            .unwrap()
            .pipeline;
        assert_eq!(published.version, 1);
        let after = pipelines
            .current(&connection, Entity::PurchaseOrder)
            .unwrap();
        assert_eq!(after.version, 1);
        let options = crosswalk_core::mapping::MapOptions::default();
        assert_eq!(
            after.plan.map_record(&source, options).unwrap()["custom_fields"],
            json!({"cost_center": "CC-7"})
        );
        // A request that took the old pipeline still maps with it.
        assert_eq!(
            before.plan.map_record(&source, options).unwrap()["custom_fields"],
            json!({})
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Connections without a version of their own share the system's default
    /// pipeline; one with an override has its own, which derives its write plan when
    /// first asked (it is not kept from the compile).
    #[test]
    fn connections_share_the_default_pipeline_until_they_change_it() {
        let (pipelines, connection, dir) = setup("shared");
        let tenant = connection.tenant_id.clone();
        let other = wait(pipelines.store.create_connection(
            &tenant,
            crosswalk_systems::SystemId::SapS4Hana,
            "SAP 2",
            Mode::Sandbox,
            None,
        ))
        .unwrap();
        let one = pipelines
            .current(&connection, Entity::PurchaseOrder)
            .unwrap();
        let two = pipelines.current(&other, Entity::PurchaseOrder).unwrap();
        assert!(Arc::ptr_eq(&one, &two));
        let custom = overrides("overrides:\n  - {target: custom_fields.marker, const: m}\n");
        let changed = pipelines
            .change(&other, Entity::PurchaseOrder, None, "key_1", put(custom))
            .unwrap()
            .pipeline;
        assert!(!Arc::ptr_eq(&changed, &one));
        assert!(changed.write.get().is_none(), "kept from the compile");
        // A look at the way back (a mapping's answer) leaves it unkept; a write keeps it.
        let read_only = changed.with_write(|w| w.read_only().to_vec());
        assert!(
            read_only.iter().any(|r| r.target == "custom_fields.marker"),
            "{read_only:?}"
        );
        assert!(changed.write.get().is_none(), "kept by a look");
        assert_eq!(changed.write().read_only(), read_only);
        assert!(changed.write.get().is_some(), "kept for the next write");
        // The first connection still maps with the default.
        assert!(Arc::ptr_eq(
            &pipelines
                .current(&connection, Entity::PurchaseOrder)
                .unwrap(),
            &one
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_change_changes_nothing() {
        let (pipelines, connection, dir) = setup("bad");
        let bad = overrides("overrides:\n  - target: totl_amount\n    path: $.x\n");
        let e = pipelines
            .change(&connection, Entity::PurchaseOrder, None, "key_1", put(bad))
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `total_amount`"), "{e}");
        assert_eq!(
            pipelines
                .current(&connection, Entity::PurchaseOrder)
                .unwrap()
                .version,
            0
        );
        assert!(
            wait(
                pipelines
                    .store
                    .mapping_history(&connection.id, Entity::PurchaseOrder)
            )
            .unwrap()
            .is_empty()
        );
        let missing = vec![PluginBinding {
            sha256: "00".into(),
            limits: Default::default(),
        }];
        let e = pipelines
            .change(&connection, Entity::PurchaseOrder, None, "key_1", |_| {
                Ok(Proposal {
                    overrides: OverrideSpec::default(),
                    plugins: missing.clone(),
                    rollback_of: None,
                })
            })
            .unwrap_err();
        assert!(matches!(e, ChangeError::UnknownPlugin { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rollback_restores_an_old_version_as_a_new_one_and_a_restart_keeps_it() {
        let (pipelines, connection, dir) = setup("rollback");
        let first = overrides("overrides:\n  - target: site_id\n    disable: true\n");
        let second = overrides(
            "overrides:\n  - target: number\n    transforms: [{template: \"PO-{value}\"}]\n",
        );
        pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                None,
                "key_1",
                put(first),
            )
            .unwrap();
        pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                None,
                "key_1",
                put(second),
            )
            .unwrap();
        let back = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 1, None, "key_2")
            .unwrap()
            .pipeline;
        assert_eq!(back.version, 3);
        let e = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 9, None, "key_2")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no version 9 of this mapping; the versions are 0 (the system's default) to 3"
        );
        // Restoring what is current already stores nothing.
        let again = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 1, None, "key_2")
            .unwrap();
        assert_eq!((again.stored, again.pipeline.version), (false, 3));
        let source =
            json!({"PurchaseOrder": "1", "to_PurchaseOrderItem": {"results": [{"Plant": "1710"}]}});
        let options = crosswalk_core::mapping::MapOptions::default();
        let out = back.plan.map_record(&source, options).unwrap();
        assert_eq!(
            (out["number"].clone(), out["site_id"].clone()),
            (json!("1"), json!(null))
        );
        // A restart: a new registry over the same store picks up version 3.
        let store = Arc::clone(&pipelines.store);
        let host = Arc::clone(&pipelines.host);
        drop(pipelines);
        let restarted = Pipelines::new(store, host);
        assert_eq!(
            restarted
                .current(&connection, Entity::PurchaseOrder)
                .unwrap()
                .version,
            3
        );
        drop(restarted);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    #[test]
    fn concurrent_changes_each_apply_to_the_version_before_and_none_is_lost() {
        let (pipelines, connection, dir) = setup("concurrent");
        let pipelines = Arc::new(pipelines);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let pipelines = Arc::clone(&pipelines);
                let connection = connection.clone();
                std::thread::spawn(move || {
                    enter_runtime();
                    for i in 0..10 {
                        let field = format!("f_{t}_{i}");
                        pipelines
                            .change(
                                &connection,
                                Entity::PurchaseOrder,
                                None,
                                "key_1",
                                |current| {
                                    let mut overrides = current.overrides.clone();
                                    overrides
                                        .overrides
                                        .push(overrides_entry(&format!("custom_fields.{field}")));
                                    Ok(Proposal {
                                        overrides,
                                        plugins: current.plugins.clone(),
                                        rollback_of: None,
                                    })
                                },
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let current = pipelines
            .current(&connection, Entity::PurchaseOrder)
            .unwrap();
        assert_eq!(current.version, 40);
        assert_eq!(
            current.overrides.overrides.len(),
            40,
            "every change is kept"
        );
        drop(current);
        drop(pipelines);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_conditional_change_on_an_old_version_is_refused_and_an_empty_one_stores_nothing() {
        let (pipelines, connection, dir) = setup("conditional");
        let custom = overrides("overrides:\n  - target: custom_fields.a\n    path: $.A\n");
        pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                Some(0),
                "key_1",
                put(custom.clone()),
            )
            .unwrap();
        let e = pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                Some(0),
                "key_1",
                put(OverrideSpec::default()),
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                ChangeError::VersionMismatch {
                    expected: 0,
                    current: 1
                }
            ),
            "{e}"
        );
        let same = pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                Some(1),
                "key_1",
                put(custom),
            )
            .unwrap();
        assert_eq!((same.stored, same.pipeline.version), (false, 1));
        assert_eq!(
            wait(
                pipelines
                    .store
                    .mapping_history(&connection.id, Entity::PurchaseOrder)
            )
            .unwrap()
            .len(),
            1
        );
        // Rolling back to 0 restores the system's default as a new version.
        let back = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 0, Some(1), "key_1")
            .unwrap();
        assert_eq!((back.stored, back.pipeline.version), (true, 2));
        assert!(back.pipeline.overrides.overrides.is_empty());
        drop(back);
        drop(pipelines);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A version stored before a rule was tightened (here: more `..` in a path than
    /// a mapping may have now) does not load, and says why; it can still be changed,
    /// conditionally too, and rolled back from.
    #[test]
    fn a_stored_version_that_no_longer_compiles_can_still_be_changed() {
        let (pipelines, connection, dir) = setup("unloadable");
        let entity = Entity::PurchaseOrder;
        let costly = overrides("overrides:\n  - target: custom_fields.q\n    path: $..a..b..c\n");
        wait(pipelines.store.append_mapping(
            &connection.id,
            entity,
            0,
            costly,
            Vec::new(),
            "key_1",
            None,
        ))
        .unwrap();
        let why = pipelines
            .current(&connection, entity)
            .unwrap_err()
            .to_string();
        assert!(why.contains("`max_descendant_segments`"), "{why}");
        // A change on a version that moved is refused; a change that still does not
        // compile is refused with the reason; a change that compiles is made on it.
        let fixed = overrides("overrides:\n  - target: custom_fields.q\n    path: $.a.b..c\n");
        let stale = pipelines.change(&connection, entity, Some(0), "key_1", put(fixed.clone()));
        assert!(
            matches!(
                stale,
                Err(ChangeError::VersionMismatch {
                    expected: 0,
                    current: 1
                })
            ),
            "{stale:?}"
        );
        let unchanged = pipelines
            .change(&connection, entity, None, "key_1", |base| {
                Ok(Proposal {
                    overrides: base.overrides.clone(),
                    plugins: base.plugins.clone(),
                    rollback_of: None,
                })
            })
            .unwrap_err()
            .to_string();
        assert!(
            unchanged.contains("`max_descendant_segments`"),
            "{unchanged}"
        );
        let changed = pipelines
            .change(&connection, entity, Some(1), "key_1", put(fixed))
            .unwrap();
        assert_eq!((changed.stored, changed.pipeline.version), (true, 2));
        let record = json!({"PurchaseOrder": "1", "a": {"b": {"x": {"c": 7}}}});
        let mapped = pipelines.current(&connection, entity).unwrap();
        assert_eq!(mapped.version, 2);
        let options = crosswalk_core::mapping::MapOptions::default();
        assert_eq!(
            mapped.plan.map_record(&record, options).unwrap()["custom_fields"]["q"],
            json!([7])
        );
        drop((changed, mapped));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn overrides_entry(target: &str) -> crosswalk_core::mapping::OverrideRule {
        overrides(&format!(
            "overrides:\n  - target: {target}\n    path: $.X\n"
        ))
        .overrides
        .remove(0)
    }
}
