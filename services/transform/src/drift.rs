//! Schema drift: per (source, event type), the field paths and JSON types seen so far and the enum
//! values of the canonical record. A new field, a re-typed field, a new enum value or a missing
//! field (one the baseline and every event since had) produces one notice on
//! `<prefix>.ops.drift.<source>` — one per change across all replicas (the database row decides
//! who announces it), not one per event. The first event of a kind sets the baseline.

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

/// What is known of one (source, event type): its shape, and the fields every event had.
#[derive(Debug, Default)]
struct Known {
    shape: Shape,
    always: BTreeSet<String>,
}

/// The drift detector, shared by every message handler.
#[derive(Debug, Clone)]
pub struct Drift {
    pool: Pool,
    bus: Bus,
    known: Arc<Mutex<HashMap<(String, String), Known>>>,
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
        let known = known.entry(key).or_default();
        let (shape, always) = (&mut known.shape, &mut known.always);
        let baseline = shape.is_empty();
        // Fields every earlier event had and this one lacks (enum values come and go).
        let missing: Vec<String> = always
            .iter()
            .filter(|path| !observed.contains_key(*path))
            .cloned()
            .collect();
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
        if fresh.is_empty() && missing.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        for path in missing {
            always.remove(&path);
            // The flag clears once, across replicas: only the one that cleared it announces.
            let cleared = client
                .execute(
                    "UPDATE observed_shapes SET always_seen = false \
                     WHERE source = $1 AND event_type = $2 AND path = $3 AND always_seen",
                    &[&source, &event_type, &path],
                )
                .await
                .map_err(|e| e.to_string())?;
            if cleared > 0 {
                let previous: Vec<String> = shape
                    .get(&path)
                    .map(|k| k.iter().cloned().collect())
                    .unwrap_or_default();
                self.announce(
                    source,
                    event_type,
                    &path,
                    "missing field",
                    previous,
                    "absent",
                )
                .await;
            }
        }
        for (path, kind, previous) in fresh {
            // Only the baseline's fields can go missing: a field that appeared later was already
            // absent from earlier events.
            let always_seen = baseline && kind != "enum value";
            let inserted = client
                .execute(
                    "INSERT INTO observed_shapes (source, event_type, path, kind, always_seen) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&source, &event_type, &path, &kind, &always_seen],
                )
                .await
                .map_err(|e| e.to_string())?;
            if always_seen {
                always.insert(path.clone());
            }
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

    async fn load(&self, source: &str, event_type: &str) -> Result<Known, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let rows = client
            .query(
                "SELECT path, kind, always_seen FROM observed_shapes WHERE source = $1 AND event_type = $2",
                &[&source, &event_type],
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut known = Known::default();
        for row in rows {
            let path: String = row.get(0);
            if row.get::<_, bool>(2) {
                known.always.insert(path.clone());
            }
            known.shape.entry(path).or_default().insert(row.get(1));
        }
        Ok(known)
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
