//! Reading the sample: its nodes by mapping path, where the record sits in its envelope, and the
//! event type it names.

use serde_json::{Map, Value};

use super::names::squash;
use super::vocabulary::{WRAPPERS, object_names};

/// One node of the sample: its mapping path, the names along it, and its value.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub path: String,
    /// Key names along the path (array indices left out; `data[merges][FNAME]` split too).
    pub names: Vec<String>,
    pub value: Value,
}

impl Node {
    pub(super) fn depth(&self) -> usize {
        self.path.split('.').count()
    }

    pub(super) fn parent(&self) -> &str {
        self.path.rsplit_once('.').map_or("", |(parent, _)| parent)
    }
}

/// Every node under the root (objects and lists too), by dotted path; keys with a dot in them
/// cannot be addressed by a mapping path and are left out.
pub(crate) fn flatten(sample: &Value) -> Vec<Node> {
    fn walk(value: &Value, path: &str, names: &[String], out: &mut Vec<Node>) {
        let children: Vec<(String, &Value, bool)> = match value {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !k.contains('.') && !k.is_empty())
                .map(|(k, v)| (k.clone(), v, true))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v, false))
                .collect(),
            _ => return,
        };
        for (key, child, named) in children {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let mut child_names = names.to_vec();
            if named {
                child_names.extend(
                    key.split(['[', ']'])
                        .filter(|s| !s.is_empty() && !s.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_owned),
                );
            }
            out.push(Node {
                path: child_path.clone(),
                names: child_names.clone(),
                value: child.clone(),
            });
            walk(child, &child_path, &child_names, out);
        }
    }
    let mut out = Vec::new();
    walk(sample, "", &[], &mut out);
    out
}

/// Where the record sits in the payload: down through envelope keys (`data`, `object`, the
/// object's own names, singular or plural, or a lone key; a list's first item) from the top.
pub(crate) fn record_root(sample: &Value, object: &str) -> String {
    let mut path = String::new();
    let mut node = sample;
    if let Value::Array(items) = node
        && let Some(first @ Value::Object(_)) = items.first()
    {
        node = first;
        path = "0".to_owned();
    }
    let names = object_names(object);
    while let Value::Object(map) = node {
        let Some((next, step)) = envelope_child(map, names) else {
            break;
        };
        path = if path.is_empty() {
            step
        } else {
            format!("{path}.{step}")
        };
        node = next;
    }
    path
}

/// The child of an object that wraps the record, with its path step (`Contacts.0` for a list).
fn envelope_child<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<(&'a Value, String)> {
    map.iter().find_map(|(key, child)| {
        let squashed = squash(key);
        let singular = squashed.strip_suffix('s').unwrap_or(&squashed);
        let wrapper = WRAPPERS.contains(&squashed.as_str())
            || names.contains(&squashed.as_str())
            || names.contains(&singular)
            || map.len() == 1;
        if !wrapper || key.contains('.') {
            return None;
        }
        match child {
            Value::Object(m) if !m.is_empty() => Some((child, key.clone())),
            Value::Array(items) => match items.first() {
                Some(first @ Value::Object(m)) if !m.is_empty() => {
                    Some((first, format!("{key}.0")))
                }
                _ => None,
            },
            _ => None,
        }
    })
}

/// The event type named by the sample: its `type`, `eventType`, `event_type`, `topic` or `event`.
pub(super) fn sample_event_type(sample: &Value) -> Option<(String, String)> {
    let top = match sample {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let map = top.as_object()?;
    ["type", "eventType", "event_type", "topic", "event"]
        .iter()
        .find_map(|key| {
            map.get(*key)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(|s| (s.trim().to_owned(), (*key).to_owned()))
        })
}
