//! The proposal before rendering (who it is for, the picks, what is missing) and `suggest`, which
//! builds it from one sample.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use switchyard_proto::contracts::Contract;

use super::candidates::{candidates, money_hint, pick};
use super::checker::Checker;
use super::evidence::{Kind, kind_of};
use super::record::{occurred_at, record_id};
use super::sampling::{flatten, record_root, sample_event_type};

/// Who the proposal is for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub name: String,
    pub source_kind: String,
    /// From `--event-type`; otherwise taken from the sample.
    pub event_type: Option<String>,
    /// How the sample is named in the header.
    pub sample_label: String,
}

/// One guess: where a value comes from, how to clean it, and how sure the guess is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pick {
    pub paths: Vec<String>,
    pub transforms: Vec<&'static str>,
    /// Sub-fields of an object built from several paths (money); `paths` then names the amount.
    pub parts: Vec<Part>,
    pub confidence: f64,
    pub why: String,
}

/// One sub-field of a built object (`minor_units`, `currency`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub name: &'static str,
    pub path: String,
    pub transforms: Vec<&'static str>,
}

/// A field spec as JSON: paths and transforms, or an object of parts.
pub(super) fn spec_json(paths: &[String], transforms: &[&str], parts: &[Part]) -> Value {
    if parts.is_empty() {
        json!({ "paths": paths, "transforms": transforms })
    } else {
        let object: Map<String, Value> = parts
            .iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    json!({ "paths": [p.path], "transforms": p.transforms }),
                )
            })
            .collect();
        json!({ "object": object })
    }
}

/// A contract field the sample gave no good candidate for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Missing {
    pub field: String,
    pub required: bool,
    pub default: Option<Value>,
    /// The closest rejected candidate, or why the field cannot be mapped yet.
    pub hint: Option<String>,
}

/// A proposed mapping, before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    pub name: String,
    pub source_kind: String,
    pub event_type: String,
    /// Where the event type came from (a comment).
    pub event_type_origin: Option<String>,
    pub contract: String,
    pub sample_label: String,
    /// The record's path in the payload (`data.object`; empty: the whole payload).
    pub root: String,
    pub record_id: Option<Pick>,
    pub occurred_at: Option<Pick>,
    /// Why no occurred_at was proposed, if a time-like field was seen.
    pub occurred_at_hint: Option<String>,
    pub fields: BTreeMap<String, Pick>,
    pub missing: Vec<Missing>,
}

/// Proposes a mapping from one sample for `contract`.
pub(crate) fn suggest(
    sample: &Value,
    contract: &Contract,
    options: &Options,
    checker: &Checker,
) -> Proposal {
    let nodes = flatten(sample);
    let root = record_root(sample, &contract.object);
    let (event_type, event_type_origin) = match (&options.event_type, sample_event_type(sample)) {
        (Some(given), _) => (given.clone(), None),
        (None, Some((found, key))) => (
            found,
            Some(format!(
                "from the sample's {key:?}; check how ingest names it"
            )),
        ),
        (None, None) => (
            "TODO".to_owned(),
            Some("TODO: the sample names no event type; pass --event-type".to_owned()),
        ),
    };
    let mut fields = BTreeMap::new();
    let mut missing = Vec::new();
    for (field, rule) in &contract.fields {
        let found = candidates(field, rule, sample, &nodes, &root, checker);
        match pick(&found) {
            Some(p) => {
                fields.insert(field.clone(), p);
            }
            None => {
                let hint = if kind_of(field, rule) == Kind::Money {
                    money_hint(field, &nodes, checker)
                } else {
                    found
                        .first()
                        .filter(|c| c.name >= 0.5)
                        .map(|c| format!("closest: {} ({:.2}: {})", c.path, c.score, c.why))
                };
                missing.push(Missing {
                    field: field.clone(),
                    required: rule.required,
                    default: rule.default.clone(),
                    hint,
                });
            }
        }
    }
    let (occurred_at, occurred_at_hint) = match occurred_at(&nodes, &root, checker) {
        Ok(p) => (Some(p), None),
        Err(hint) => (None, hint),
    };
    Proposal {
        name: options.name.clone(),
        source_kind: options.source_kind.clone(),
        event_type,
        event_type_origin,
        contract: contract.id(),
        sample_label: options.sample_label.clone(),
        record_id: record_id(&nodes, &root, &contract.object),
        root,
        occurred_at,
        occurred_at_hint,
        fields,
        missing,
    }
}
