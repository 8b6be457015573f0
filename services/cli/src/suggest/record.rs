//! The record's id (`record_id`) and when the change happened (`occurred_at`).

use serde_json::Value;
use switchyard_proto::contracts::FieldType;

use super::candidates::{Candidate, by_score, is_ancestor_or_self};
use super::checker::{Checker, rule};
use super::evidence::{Kind, evidence, is_empty};
use super::names::{squash, tokens};
use super::proposal::Pick;
use super::sampling::Node;
use super::vocabulary::object_names;
use super::{MAX_PATHS, NAME_WEIGHT, THRESHOLD, VALUE_WEIGHT};

/// The record's id: `id` or `<object>_id` (`ContactID`, `customer_id`) at the top of the record;
/// in the envelope only as a weaker guess (it may be the event's id).
pub(crate) fn record_id(nodes: &[Node], root: &str, object: &str) -> Option<Pick> {
    // The object's names, and the envelope's (`Contacts.0` holds a contact, whatever the object).
    let mut names: Vec<String> = object_names(object)
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    for step in root
        .split('.')
        .filter(|s| !s.bytes().all(|b| b.is_ascii_digit()))
    {
        let squashed = squash(step);
        names.push(squashed.strip_suffix('s').unwrap_or(&squashed).to_owned());
    }
    let mut found = Vec::new();
    for node in nodes {
        let Some(key) = node.names.last() else {
            continue;
        };
        if !(node.value.is_string() || node.value.is_number() || node.value.is_null()) {
            continue;
        }
        let squashed = squash(key);
        let (name, name_why) = if squashed == "id" {
            (1.0, format!("name {key:?}"))
        } else if names
            .iter()
            .any(|n| squashed == format!("{n}id") || squashed == format!("{n}uuid"))
        {
            (0.95, format!("name {key:?} is the record's id"))
        } else if matches!(
            squashed.as_str(),
            "uuid" | "guid" | "resourceid" | "entityid" | "recordid" | "objectid" | "externalid"
        ) {
            (0.8, format!("name {key:?} names an id"))
        } else {
            continue;
        };
        let (factor, place) = if node.parent() == root {
            (
                1.0,
                if root.is_empty() {
                    "at the top of the payload".to_owned()
                } else {
                    format!("at the top of the record ({root})")
                },
            )
        } else if is_ancestor_or_self(node.parent(), root) {
            (
                0.7,
                format!("in the envelope around the record ({root}): it may be the event's id"),
            )
        } else {
            continue;
        };
        let (value, value_why, transforms): (f64, &str, &[&'static str]) = match &node.value {
            v if is_empty(v) => (0.0, "no value in the sample to check", &[]),
            Value::Number(_) => (1.0, "value is a number", &["to_string"]),
            _ => (1.0, "value is an identifier", &[]),
        };
        let score = NAME_WEIGHT * name * factor + VALUE_WEIGHT * value;
        found.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name,
            value,
            score: score.clamp(0.0, 0.99),
            transforms: transforms.to_vec(),
            parts: Vec::new(),
            why: format!("{name_why} {place}; {value_why}"),
        });
    }
    found.sort_by(by_score);
    found
        .first()
        .filter(|c| c.score >= THRESHOLD)
        .map(|c| Pick {
            paths: vec![c.path.clone()],
            transforms: c.transforms.clone(),
            parts: Vec::new(),
            confidence: c.score,
            why: c.why.clone(),
        })
}

/// How a key names a time: an update (best), an event, a creation.
fn time_name(key: &str) -> Option<(f64, &'static str)> {
    let toks = tokens(key);
    let squashed = toks.concat();
    let has = |t: &str| toks.iter().any(|x| x == t);
    if has("updated")
        || has("modified")
        || has("changed")
        || has("modstamp")
        || squashed == "lastmodified"
    {
        Some((1.0, "an update time"))
    } else if has("occurred")
        || has("timestamp")
        || has("fired")
        || has("sent")
        || squashed == "time"
        || squashed.starts_with("eventtime")
        || squashed.starts_with("eventdate")
    {
        Some((0.9, "an event time"))
    } else if has("created") || has("creation") || squashed == "createdate" {
        Some((0.75, "a creation time"))
    } else {
        None
    }
}

/// When the change happened: update, event or creation times at the top of the record or in its
/// envelope, with the transform their values need. `Err` carries why a time-named field was
/// not taken.
pub(crate) fn occurred_at(
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Result<Pick, Option<String>> {
    let mut found = Vec::new();
    let mut rejected = None;
    for node in nodes {
        let Some(key) = node.names.last() else {
            continue;
        };
        let Some((name, what)) = time_name(key) else {
            continue;
        };
        if !is_ancestor_or_self(node.parent(), root) || is_empty(&node.value) {
            continue;
        }
        let evidence = evidence(
            Kind::Datetime,
            "occurred_at",
            &rule(FieldType::Datetime),
            &node.value,
            None,
            checker,
        );
        if evidence.score <= 0.0 {
            rejected.get_or_insert_with(|| format!("{} is not a date-time the transforms read (datetime_utc: RFC 3339 or YYYY-MM-DD HH:MM:SS; unix_seconds; unix_millis)", node.path));
            continue;
        }
        let score = NAME_WEIGHT * name + VALUE_WEIGHT * evidence.score;
        found.push((
            node.parent().to_owned(),
            Candidate {
                path: node.path.clone(),
                depth: node.depth(),
                name,
                value: evidence.score,
                score: score.clamp(0.0, 0.99),
                transforms: evidence.transforms,
                parts: Vec::new(),
                why: format!("name {key:?} is {what}; {}", evidence.why),
            },
        ));
    }
    found.sort_by(|a, b| by_score(&a.1, &b.1));
    let Some((parent, best)) = found.first().filter(|(_, c)| c.score >= THRESHOLD) else {
        return Err(rejected);
    };
    let mut paths = vec![best.path.clone()];
    for (other_parent, other) in &found[1..] {
        if paths.len() < MAX_PATHS
            && other_parent == parent
            && other.transforms == best.transforms
            && other.score >= THRESHOLD
        {
            paths.push(other.path.clone());
        }
    }
    Ok(Pick {
        paths,
        transforms: best.transforms.clone(),
        parts: best.parts.clone(),
        confidence: best.score,
        why: best.why.clone(),
    })
}
