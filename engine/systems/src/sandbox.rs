//! Sandbox connections: built-in sample records of each system, in the system's own
//! payload format, so that they go through the connection's real mapping (overrides
//! and plugins included).
//!
//! The datasets are `sandbox/<system>.json` in this crate, compiled into the binary: per
//! entity, a list of records, each with the scenario it shows (`standard`,
//! `custom_fields`, `draft`, `approved`, `completed`, `cancelled`, …) and, for the
//! error cases (`invalid_vendor`, `out_of_stock`), the problem a client must handle.
//! The service answers the scenario and the problem of every record next to the data,
//! so that a client can see which records are the error cases. Sandbox data is
//! read-only: a write answers success and changes nothing.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crosswalk_core::model::Entity;

use crate::{SYSTEMS, SystemId};

/// What a sample record is there to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scenario {
    /// Its name: `standard`, `draft`, `invalid_vendor`, ….
    pub scenario: String,
    /// For an error case: what is wrong with the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// The problem of an error case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// The unified field at fault: `vendor.id`, `lines[0].item_id`.
    pub field: String,
    /// A code: `invalid_vendor`, `out_of_stock`.
    pub code: String,
    /// What a real system would do with it.
    pub message: String,
}

/// A sample record: native, with its scenario.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleRecord {
    /// The scenario.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// The record as the system's API returns it.
    pub record: Value,
}

type Dataset = Vec<(Entity, Vec<SampleRecord>)>;

fn datasets() -> &'static Vec<(SystemId, Dataset)> {
    static DATA: OnceLock<Vec<(SystemId, Dataset)>> = OnceLock::new();
    DATA.get_or_init(|| {
        SYSTEMS
            .iter()
            .map(|system| {
                let by_entity: std::collections::BTreeMap<String, Vec<SampleRecord>> =
                    serde_json::from_str(system.sandbox).unwrap_or_else(|e| {
                        panic!(
                            "the built-in sandbox dataset of {} does not parse: {e}",
                            system.id
                        )
                    });
                let dataset = by_entity
                    .into_iter()
                    .map(|(entity, records)| {
                        let entity: Entity = entity.parse().unwrap_or_else(|_| {
                            panic!(
                                "the sandbox dataset of {} has an unknown entity {entity}",
                                system.id
                            )
                        });
                        (entity, records)
                    })
                    .collect();
                (system.id, dataset)
            })
            .collect()
    })
}

/// The sample records of a system's entity, in order (empty when there are none).
pub fn records(system: SystemId, entity: Entity) -> &'static [SampleRecord] {
    datasets()
        .iter()
        .find(|(s, _)| *s == system)
        .and_then(|(_, d)| d.iter().find(|(e, _)| *e == entity))
        .map_or(&[], |(_, records)| records.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosswalk_core::mapping::MapOptions;

    use crate::SYSTEMS;

    #[test]
    fn every_system_has_samples_of_every_entity_it_maps_and_they_map() {
        for system in SYSTEMS {
            for entity in system.entities() {
                let samples = records(system.id, entity);
                assert!(
                    !samples.is_empty(),
                    "{} has no sandbox {entity} records",
                    system.id
                );
                let plan = crate::plan(system.id.as_str(), entity, None).unwrap();
                for s in samples {
                    let record = plan.map_record(&s.record, MapOptions::default()).unwrap();
                    assert!(
                        record.get("errors").is_none(),
                        "{} {entity} sample `{}` has field errors: {}",
                        system.id,
                        s.scenario.scenario,
                        record["errors"]
                    );
                }
            }
        }
    }

    #[test]
    fn purchase_orders_show_every_state_and_error_case() {
        for system in SYSTEMS {
            let samples = records(system.id, Entity::PurchaseOrder);
            let plan = crate::plan(system.id.as_str(), Entity::PurchaseOrder, None).unwrap();
            let mut ids = std::collections::BTreeSet::new();
            for wanted in [
                "standard",
                "draft",
                "approved",
                "completed",
                "invalid_vendor",
                "out_of_stock",
            ] {
                assert!(
                    samples.iter().any(|s| s.scenario.scenario == wanted),
                    "{} has no `{wanted}` purchase order",
                    system.id
                );
            }
            assert!(
                samples
                    .iter()
                    .any(|s| s.scenario.scenario.contains("custom")),
                "{} has no purchase order with custom fields",
                system.id
            );
            for s in samples {
                let record = plan.map_record(&s.record, MapOptions::default()).unwrap();
                let id = record["id"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "{}: id {id} repeats", system.id);
                let status = record["status"].as_str().unwrap();
                match s.scenario.scenario.as_str() {
                    "draft" => assert_eq!(status, "draft", "{}", system.id),
                    "approved" => assert_eq!(status, "approved", "{}", system.id),
                    "invalid_vendor" | "out_of_stock" => {
                        let problem = s.scenario.problem.as_ref().expect("error cases say why");
                        assert_eq!(problem.code, s.scenario.scenario);
                    }
                    _ => assert!(s.scenario.problem.is_none()),
                }
            }
        }
    }
}
