//! Schema drift: per (source, event type), the field paths and JSON types seen so far and the enum
//! values of the canonical record. A new field, a re-typed field or a new enum value produces one
//! notice on `<prefix>.ops.drift.<source>` — one per change across all replicas (the database row
//! decides who announces it), not one per event. The first event of a kind sets the baseline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use serde_json::Value;
use switchyard_chassis::bus::Bus;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::SchemaDrift;
use tokio::sync::Mutex;

/// Paths per payload at most: a runaway payload must not flood the table.
const MAX_PATHS: usize = 300;
const MAX_DEPTH: usize = 8;

type Shape = BTreeMap<String, BTreeSet<String>>;

/// The drift detector, shared by every message handler.
#[derive(Debug, Clone)]
pub struct Drift {
    pool: Pool,
    bus: Bus,
    known: Arc<Mutex<HashMap<(String, String), Shape>>>,
    notices: Family<Vec<(String, String)>, Counter>,
}

impl Drift {
    pub fn new(pool: Pool, bus: Bus, notices: Family<Vec<(String, String)>, Counter>) -> Self {
        Self {
            pool,
            bus,
            known: Arc::default(),
            notices,
        }
    }

    /// Compares an event with what was seen before; announces each change once. Failures are
    /// logged, never fatal: drift detection must not stop the data.
    pub async fn observe(
        &self,
        source: &str,
        event_type: &str,
        payload: &Value,
        enums: &[(String, String)],
    ) {
        let mut observed = Shape::new();
        flatten(payload, String::new(), 0, &mut observed);
        for (field, value) in enums {
            observed
                .entry(format!("{field}={value}"))
                .or_default()
                .insert("enum value".to_owned());
        }
        if let Err(error) = self.compare(source, event_type, observed).await {
            tracing::warn!(%error, source, event_type, "schema drift check failed");
        }
    }

    async fn compare(&self, source: &str, event_type: &str, observed: Shape) -> Result<(), String> {
        let key = (source.to_owned(), event_type.to_owned());
        let mut known = self.known.lock().await;
        if !known.contains_key(&key) {
            known.insert(key.clone(), self.load(source, event_type).await?);
        }
        let shape = known.entry(key).or_default();
        let baseline = shape.is_empty();
        let mut fresh = Vec::new();
        for (path, kinds) in &observed {
            for kind in kinds {
                if !shape.get(path).is_some_and(|k| k.contains(kind)) {
                    let previous: Vec<String> = shape
                        .get(path)
                        .map(|k| k.iter().cloned().collect())
                        .unwrap_or_default();
                    fresh.push((path.clone(), kind.clone(), previous));
                }
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        for (path, kind, previous) in fresh {
            let inserted = client
                .execute(
                    "INSERT INTO observed_shapes (source, event_type, path, kind) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&source, &event_type, &path, &kind],
                )
                .await
                .map_err(|e| e.to_string())?;
            shape.entry(path.clone()).or_default().insert(kind.clone());
            // The first event of a kind is the baseline; a row another replica wrote first is its
            // notice to give.
            if baseline || inserted == 0 {
                continue;
            }
            let change = if kind == "enum value" {
                "new enum value"
            } else if previous.is_empty() {
                "new field"
            } else {
                "re-typed field"
            };
            self.announce(source, event_type, &path, change, previous, &kind)
                .await;
        }
        Ok(())
    }

    async fn load(&self, source: &str, event_type: &str) -> Result<Shape, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let rows = client
            .query(
                "SELECT path, kind FROM observed_shapes WHERE source = $1 AND event_type = $2",
                &[&source, &event_type],
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut shape = Shape::new();
        for row in rows {
            shape.entry(row.get(0)).or_default().insert(row.get(1));
        }
        Ok(shape)
    }

    async fn announce(
        &self,
        source: &str,
        event_type: &str,
        path: &str,
        change: &str,
        previous: Vec<String>,
        kind: &str,
    ) {
        tracing::warn!(source, event_type, path, change, "schema drift");
        self.notices
            .get_or_create(&vec![
                ("source".to_owned(), source.to_owned()),
                ("change".to_owned(), change.to_owned()),
            ])
            .inc();
        let notice = SchemaDrift {
            source: source.to_owned(),
            event_type: event_type.to_owned(),
            path: path.to_owned(),
            change: change.to_owned(),
            previous_types: previous,
            observed_type: kind.to_owned(),
            example: format!("a {kind} at {path}"),
            detected_at: Some(switchyard_proto::timestamp(std::time::SystemTime::now())),
        };
        let msg_id = format!("drift:{source}:{event_type}:{path}:{kind}");
        if let Err(error) = self
            .bus
            .publish(
                self.bus.names().ops_drift(source),
                &msg_id,
                Default::default(),
                Bytes::from(notice.encode_to_vec()),
            )
            .await
        {
            tracing::warn!(%error, "drift notice not published");
        }
    }
}

/// Every leaf path with its JSON type; arrays as `[]` (their first three elements).
fn flatten(value: &Value, path: String, depth: usize, out: &mut Shape) {
    if out.len() >= MAX_PATHS {
        return;
    }
    let kind = match value {
        Value::Null => return,
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(items) if depth < MAX_DEPTH && !items.is_empty() => {
            for item in items.iter().take(3) {
                flatten(item, format!("{path}[]"), depth + 1, out);
            }
            return;
        }
        Value::Object(map) if depth < MAX_DEPTH && !map.is_empty() => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, child_path, depth + 1, out);
            }
            return;
        }
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.entry(if path.is_empty() {
        "$".to_owned()
    } else {
        path
    })
    .or_default()
    .insert(kind.to_owned());
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes_list_leaf_paths_and_types() {
        let mut shape = super::Shape::new();
        super::flatten(
            &serde_json::json!({"a": {"b": 1, "c": [ {"d": "x"} ], "n": null}, "e": []}),
            String::new(),
            0,
            &mut shape,
        );
        let paths: Vec<_> = shape
            .iter()
            .map(|(p, k)| format!("{p}:{}", k.iter().cloned().collect::<Vec<_>>().join("|")))
            .collect();
        assert_eq!(paths, vec!["a.b:number", "a.c[].d:string", "e:array"]);
    }
}
