//! The hot-swapped pipelines of every connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use crate::mapping::{self, MapLimits, OverrideSpec, Plan, ResolvedMapping, SpecErrors};
use crate::model::Entity;
use crate::plugin::{Limits, PluginError, PluginHost, PluginSet};
use crate::store::{Connection, MappingVersion, PluginBinding, Store, StoreError};

/// What one connection runs for one entity: a compiled plan and the version it is.
#[derive(Debug)]
pub struct Pipeline {
    /// The mapping version (0: the system's default, never changed).
    pub version: u64,
    /// The resolved mapping, with origins, as `GET …/mappings/{entity}` shows it.
    pub resolved: ResolvedMapping,
    /// The compiled plan.
    pub plan: Plan,
    /// The way back, for writes: the inverted rules and the read-only targets.
    pub write: crate::mapping::WritePlan,
    /// The connection's overrides this version holds.
    pub overrides: OverrideSpec,
    /// The plugins bound to this version.
    pub plugins: Vec<PluginBinding>,
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
    /// A bound plugin version that this tenant has not uploaded.
    #[error("plugin version `{sha256}` is not uploaded (upload it with `POST /v1/plugins`)")]
    UnknownPlugin {
        /// Its sha256.
        sha256: String,
    },
    /// A rollback to a version that does not exist.
    #[error("there is no version {version} of this mapping; the versions are 1 to {last}")]
    UnknownVersion {
        /// The version asked for.
        version: u64,
        /// The last version.
        last: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Key = (String, Entity);

/// The current pipeline of every (connection, entity), loaded on first use.
pub struct Pipelines {
    store: Arc<dyn Store>,
    host: Arc<PluginHost>,
    /// What mapping may take, given to every plan compiled here.
    limits: MapLimits,
    slots: RwLock<HashMap<Key, Arc<Slot>>>,
}

/// One (connection, entity): its published pipeline, and a lock that orders changes so
/// that versions are published in the order they are stored.
struct Slot {
    current: ArcSwap<Pipeline>,
    changing: Mutex<()>,
}

impl Pipelines {
    /// Pipelines over a store and a plugin host, whose plans map under
    /// [`MapLimits::DEFAULT`].
    pub fn new(store: Arc<dyn Store>, host: Arc<PluginHost>) -> Pipelines {
        Pipelines {
            store,
            host,
            limits: MapLimits::DEFAULT,
            slots: RwLock::new(HashMap::new()),
        }
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

    /// Applies a change: validates and compiles it, stores it as the next version, then
    /// publishes it. Returns once the next request will see it.
    pub fn change(
        &self,
        connection: &Connection,
        entity: Entity,
        overrides: OverrideSpec,
        plugins: Vec<PluginBinding>,
        author: &str,
    ) -> Result<Arc<Pipeline>, ChangeError> {
        self.publish(connection, entity, overrides, plugins, author, None)
    }

    /// Restores an earlier version, as a new version.
    pub fn rollback(
        &self,
        connection: &Connection,
        entity: Entity,
        version: u64,
        author: &str,
    ) -> Result<Arc<Pipeline>, ChangeError> {
        let history = self.store.mapping_history(&connection.id, entity)?;
        let Some(old) = history.iter().find(|v| v.version == version) else {
            return Err(ChangeError::UnknownVersion {
                version,
                last: history.last().map_or(0, |v| v.version),
            });
        };
        self.publish(
            connection,
            entity,
            old.overrides.clone(),
            old.plugins.clone(),
            author,
            Some(version),
        )
    }

    /// Compiles a proposed change without storing or publishing it (for previews).
    pub fn preview(
        &self,
        connection: &Connection,
        entity: Entity,
        overrides: &OverrideSpec,
        plugins: &[PluginBinding],
    ) -> Result<Pipeline, ChangeError> {
        self.compile(connection, entity, overrides, plugins, 0)
    }

    /// Forgets a deleted connection's pipelines.
    pub fn forget(&self, connection_id: &str) {
        self.slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _), _| c != connection_id);
    }

    fn publish(
        &self,
        connection: &Connection,
        entity: Entity,
        overrides: OverrideSpec,
        plugins: Vec<PluginBinding>,
        author: &str,
        rollback_of: Option<u64>,
    ) -> Result<Arc<Pipeline>, ChangeError> {
        let slot = self.slot(connection, entity)?;
        let _ordered = slot.changing.lock().unwrap_or_else(|p| p.into_inner());
        // Validate and compile before anything is stored: a bad change changes nothing.
        let mut pipeline = self.compile(connection, entity, &overrides, &plugins, 0)?;
        let stored = self.store.append_mapping(
            &connection.id,
            entity,
            overrides,
            plugins,
            author,
            rollback_of,
        )?;
        pipeline.version = stored.version;
        let pipeline = Arc::new(pipeline);
        slot.current.store(Arc::clone(&pipeline));
        Ok(pipeline)
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
        let pipeline = match self.store.mapping_history(&connection.id, entity)?.pop() {
            Some(MappingVersion {
                version,
                overrides,
                plugins,
                ..
            }) => self.compile(connection, entity, &overrides, &plugins, version)?,
            None => self.compile(connection, entity, &OverrideSpec::default(), &[], 0)?,
        };
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key).or_insert_with(|| {
            Arc::new(Slot {
                current: ArcSwap::from_pointee(pipeline),
                changing: Mutex::new(()),
            })
        });
        Ok(Arc::clone(slot))
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
            let Some((_, bytes)) = self.store.plugin(&connection.tenant_id, &binding.sha256)?
            else {
                return Err(ChangeError::UnknownPlugin {
                    sha256: binding.sha256.clone(),
                });
            };
            let plugin = self.host.load(&bytes)?;
            set.insert(plugin, Limits::with(&binding.limits)?);
        }
        let resolved = mapping::resolve(&connection.system, entity, Some(overrides))?;
        let plan = Plan::compile(&resolved, &set)?.with_limits(self.limits);
        let write = crate::mapping::WritePlan::derive(&resolved, &set)?;
        Ok(Pipeline {
            version,
            write,
            resolved,
            plan,
            overrides: overrides.clone(),
            plugins: plugins.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Format;
    use crate::plugin::HostConfig;
    use crate::store::{Mode, SledStore};
    use serde_json::json;

    fn setup(name: &str) -> (Pipelines, Connection, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("crosswalk-pipelines-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
        let tenant = store.create_tenant("Acme").unwrap();
        let connection = store
            .create_connection(&tenant.id, "sap-s4hana", "SAP", Mode::Sandbox, None)
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
            .change(&connection, Entity::PurchaseOrder, custom, vec![], "key_1")
            .unwrap();
        assert_eq!(published.version, 1);
        let after = pipelines
            .current(&connection, Entity::PurchaseOrder)
            .unwrap();
        assert_eq!(after.version, 1);
        let options = crate::mapping::MapOptions::default();
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

    #[test]
    fn a_bad_change_changes_nothing() {
        let (pipelines, connection, dir) = setup("bad");
        let bad = overrides("overrides:\n  - target: totl_amount\n    path: $.x\n");
        let e = pipelines
            .change(&connection, Entity::PurchaseOrder, bad, vec![], "key_1")
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
            pipelines
                .store
                .mapping_history(&connection.id, Entity::PurchaseOrder)
                .unwrap()
                .is_empty()
        );
        let missing = vec![PluginBinding {
            sha256: "00".into(),
            limits: Default::default(),
        }];
        let e = pipelines
            .change(
                &connection,
                Entity::PurchaseOrder,
                OverrideSpec::default(),
                missing,
                "key_1",
            )
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
            .change(&connection, Entity::PurchaseOrder, first, vec![], "key_1")
            .unwrap();
        pipelines
            .change(&connection, Entity::PurchaseOrder, second, vec![], "key_1")
            .unwrap();
        let back = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 1, "key_2")
            .unwrap();
        assert_eq!(back.version, 3);
        let e = pipelines
            .rollback(&connection, Entity::PurchaseOrder, 9, "key_2")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no version 9 of this mapping; the versions are 1 to 3"
        );
        let source =
            json!({"PurchaseOrder": "1", "to_PurchaseOrderItem": {"results": [{"Plant": "1710"}]}});
        let options = crate::mapping::MapOptions::default();
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
}
