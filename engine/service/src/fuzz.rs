//! Entry points of the fuzz targets in `fuzz/` (run them with `scripts/fuzz`). Not an
//! API: hidden from the docs and free to change.
//!
//! Each takes arbitrary bytes, runs one reader of untrusted input as the service runs
//! it, and checks what must hold whatever the input. It returns quietly when the input
//! is refused with an error, and panics only when something that must hold does not:
//! that panic, or a crash, a hang or an allocation beyond the fuzzer's limit, is a
//! finding.
//!
//! | target | what reads the input |
//! | --- | --- |
//! | [`jsonpath`] | [`Path::parse`], then [`Path::nodes`] and [`Path::select`] on a document |
//! | [`mapping_spec`] | [`MappingSpec::parse`], [`OverrideSpec::parse`] and [`Document::parse`] (JSON and YAML), then resolving, compiling and running the overrides on SAP's purchase orders |
//! | [`payload`] | [`Payload::parse`]: taking the envelope off a transform's body |
//! | [`ndjson`] | the NDJSON body reader of the transform endpoint, in pieces of any size, and [`crate::ndjson::parse_line`] on each line |
//! | [`plugin`] | [`PluginHost::load`]: an upload's checks |

use std::sync::OnceLock;

use serde_json::Value;

use crosswalk_core::mapping::{
    Document, Format, MapOptions, MappingSpec, OverrideSpec, Payload, Plan,
};
use crosswalk_core::model::Entity;
use crosswalk_core::path::Path;
use crosswalk_plugin_host::{HostConfig, Plugin as _, PluginHost};

/// The input split at its first NUL byte: the part before it, and the rest (empty when
/// there is none).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// A JSONPath query, a NUL, then a JSON document. The query is parsed; when it is
/// valid and the document is JSON, it is evaluated. A query with more than two
/// descendant segments is only parsed: how far those may grow is for the evaluation
/// budget to bound, not for this target to rediscover.
pub fn jsonpath(data: &[u8]) {
    let (query, document) = split(data);
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let path = match Path::parse(query) {
        Ok(path) => path,
        Err(e) => {
            assert!(
                e.position >= 1 && e.position <= query.chars().count() + 1,
                "the error's position {} is outside `{query}`",
                e.position
            );
            return;
        }
    };
    assert_eq!(path.as_str(), query);
    if query.matches("..").count() > 2 {
        return;
    }
    let Ok(document) = serde_json::from_slice::<Value>(document) else {
        return;
    };
    let nodes = path.nodes(&document);
    let selected = path.select(&document);
    if path.is_singular() {
        assert!(
            nodes.len() <= 1,
            "a singular query selected {}",
            nodes.len()
        );
        assert_eq!(nodes.first().copied().unwrap_or(&Value::Null), &selected);
    } else {
        let values: Vec<&Value> = selected
            .as_array()
            .expect("a non-singular query selects an array")
            .iter()
            .collect();
        assert_eq!(values, nodes);
    }
}

/// A sample SAP purchase order, which compiled overrides are run on.
fn sample_record() -> &'static Value {
    static RECORD: OnceLock<Value> = OnceLock::new();
    RECORD.get_or_init(|| {
        serde_json::json!({
            "PurchaseOrder": "4500000017",
            "PurchaseOrderType": "NB",
            "Supplier": "17300001",
            "DocumentCurrency": "EUR",
            "PurchaseOrderDate": "/Date(1717372800000)/",
            "ZZ1_CostCenter_PDH": "CC-1000",
            "to_PurchaseOrderItem": {"results": [
                {"PurchaseOrderItem": "10", "Material": "RM-1", "OrderQuantity": "5", "PurchaseOrderQuantityUnit": "PC", "NetPriceAmount": "12.50"},
                {"PurchaseOrderItem": "20", "Material": "RM-2", "OrderQuantity": "1.5", "PurchaseOrderQuantityUnit": "KG", "NetPriceAmount": "3"}
            ]}
        })
    })
}

/// A mapping or override document, as text (JSON or YAML). Every document that parses
/// must serialize to JSON that parses back (stored versions are read back so); override
/// documents are resolved on SAP's default purchase-order mapping, compiled, and run on
/// a sample record.
pub fn mapping_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Json, Format::Yaml] {
        if let Ok(spec) = MappingSpec::parse(text, format) {
            let json = serde_json::to_string(&spec).expect("a mapping serializes");
            MappingSpec::parse(&json, Format::Json)
                .unwrap_or_else(|e| panic!("a mapping does not parse back: {e}\n{json}"));
        }
        if let Ok(overrides) = OverrideSpec::parse(text, format) {
            let json = serde_json::to_string(&overrides).expect("overrides serialize");
            OverrideSpec::parse(&json, Format::Json)
                .unwrap_or_else(|e| panic!("overrides do not parse back: {e}\n{json}"));
            if let Ok(plan) =
                crosswalk_systems::plan("sap-s4hana", Entity::PurchaseOrder, Some(&overrides))
                && plan_is_cheap(&overrides)
            {
                run(&plan);
            }
        }
        let _ = Document::parse(text, format);
    }
}

/// Whether the overrides' paths are within what [`jsonpath`] evaluates (at most two
/// descendant segments each).
fn plan_is_cheap(overrides: &OverrideSpec) -> bool {
    let text = serde_json::to_string(overrides).unwrap_or_default();
    text.matches("..").count() <= 2
}

fn run(plan: &Plan) {
    let record = sample_record();
    for options in [
        MapOptions::default(),
        MapOptions {
            strict: true,
            remote_data: true,
        },
    ] {
        let batch = plan.map_batch(std::slice::from_ref(record), options);
        assert_eq!(batch.records.len(), 1);
    }
}

/// A transform's JSON body: taking the envelope off keeps every record, in order, and
/// nothing else.
pub fn payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let payload = match Payload::parse(text) {
        Ok(payload) => payload,
        Err(e) => {
            assert!(e.line >= 1, "{e}");
            return;
        }
    };
    let value: Value = serde_json::from_str(text).expect("it parsed once");
    match payload {
        Payload::One(record) => {
            assert!(
                record == value || Some(&record) == value.get("d"),
                "one record is the payload or its `d`"
            );
        }
        Payload::Many(records) => {
            let candidates = [
                value.as_array(),
                value.pointer("/d/results").and_then(Value::as_array),
                value.get("value").and_then(Value::as_array),
                value.get("member").and_then(Value::as_array),
            ];
            assert!(
                candidates.iter().flatten().any(|c| **c == records),
                "the records are one of the payload's collections"
            );
        }
    }
}

/// An NDJSON body: the first byte chooses the size of the pieces the body arrives in
/// (1 to 64 bytes), the second the line limit (1 to 256 bytes), the rest is the body.
/// The reader must hand on exactly the body's non-blank lines, numbered from 1, each
/// without its line end, until the first line over the limit, which ends the stream
/// with an error naming it.
pub fn ndjson(data: &[u8]) {
    let [piece, limit, body @ ..] = data else {
        return;
    };
    let piece = usize::from(*piece % 64) + 1;
    let limit = usize::from(*limit) + 1;
    let pieces: Vec<bytes::Bytes> = body
        .chunks(piece)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let (lines, end) = crate::http::ndjson::read_all(pieces, limit);

    // What the lines must be: the body split at `\n`, each without a `\r` before it,
    // blank ones left out, up to the first longer than the limit.
    let mut expected = Vec::new();
    let mut too_long = None;
    let mut raw: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if raw.last().is_some_and(|l| l.is_empty()) {
        raw.pop();
    }
    for (i, line) in raw.into_iter().enumerate() {
        let number = i + 1;
        if line.len() > limit {
            too_long = Some(number);
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            expected.push((number, line.to_vec()));
        }
    }
    let got: Vec<(usize, Vec<u8>)> = lines.iter().map(|(n, l)| (*n, l.to_vec())).collect();
    assert_eq!(got, expected, "the lines handed on");
    match (too_long, &end) {
        (None, None) => {}
        (Some(line), Some(error)) => {
            let error = error.to_value();
            assert_eq!(error["error"]["code"], "payload_too_large", "{error}");
            assert_eq!(error["error"]["details"]["line"], line, "{error}");
        }
        _ => panic!("the stream ended with {end:?}, where the line over the limit is {too_long:?}"),
    }
    for (number, line) in &lines {
        match crate::ndjson::parse_line(*number, line) {
            Ok(record) => assert!(!record.is_array()),
            Err(error) => {
                let error = error.to_value();
                assert_eq!(error["error"]["details"]["line"], *number, "{error}");
            }
        }
    }
}

/// A plugin upload: refused with an error, or loaded with a name and the content hash
/// of its bytes.
pub fn plugin(data: &[u8]) {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    let host = HOST.get_or_init(|| {
        PluginHost::new(HostConfig {
            pooling: false,
            max_instances: 1,
            cache_dir: None,
            ..HostConfig::default()
        })
        .expect("the plugin host starts")
    });
    match host.load(data) {
        Ok(plugin) => {
            assert_eq!(plugin.sha256(), PluginHost::sha256(data));
            assert!(!plugin.name().is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry points hold on the kinds of input the seed corpus holds, so that a
    /// change that breaks one is seen without running the fuzzer.
    #[test]
    fn the_entry_points_hold_on_seed_like_inputs() {
        jsonpath(
            b"$.d.results[*].PurchaseOrder\0{\"d\":{\"results\":[{\"PurchaseOrder\":\"1\"}]}}",
        );
        jsonpath(b"$..[?@.a > 1]\0[{\"a\":2},{\"a\":[{\"a\":3}]}]");
        jsonpath(b"$.a[\0{}");
        jsonpath(b"$.a\0not json");
        mapping_spec(
            b"overrides:\n  - target: custom_fields.cost_center\n    path: $.ZZ1_CostCenter_PDH\n",
        );
        mapping_spec(
            b"{\"overrides\": [{\"target\": \"lines.quantity\", \"path\": \"$..OrderQuantity\"}]}",
        );
        mapping_spec(b"rules: [}");
        payload(br#"{"d": {"results": [{"a": 1}, {"a": 2}]}}"#);
        payload(br#"{"value": [], "@odata.context": "x"}"#);
        payload(br#"{"d": {"a": 1}}"#);
        payload(b"[1, 2");
        for piece in [0, 3, 63] {
            ndjson(
                &[
                    &[piece, 40][..],
                    b"{\"a\":1}\r\n\n  \n[1,2]\nnot json\n{\"b\":2}",
                ]
                .concat(),
            );
            ndjson(&[&[piece, 5][..], b"{}\n{\"long\": true}\n{}\n"].concat());
        }
        plugin(b"\0asm\x01\0\0\0");
        plugin(b"\0asm\x0d\0\x01\0");
        plugin(b"not wasm");
    }
}
