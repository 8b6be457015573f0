//! Declarative mappings: YAML files (built in under `services/transform/mappings/`, or the user's
//! own directory, which overrides by name) that say how a vendor's event becomes a canonical
//! object — field paths, transforms and the contract version it must satisfy. No Rust per vendor.

mod transforms;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_proto::contracts::Contract;

pub use transforms::{Context, Transform};

/// The mappings that ship with Switchyard.
const BUILT_IN: [(&str, &str); 5] = [
    (
        "standard-webhooks.contact.yaml",
        include_str!("../../mappings/standard-webhooks.contact.yaml"),
    ),
    (
        "stripe.customer.yaml",
        include_str!("../../mappings/stripe.customer.yaml"),
    ),
    (
        "shopify.customer.yaml",
        include_str!("../../mappings/shopify.customer.yaml"),
    ),
    (
        "mailchimp.member.yaml",
        include_str!("../../mappings/mailchimp.member.yaml"),
    ),
    (
        "salesforce.contact.yaml",
        include_str!("../../mappings/salesforce.contact.yaml"),
    ),
];

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("mapping {file}: {reason}")]
pub struct MappingError {
    pub file: String,
    pub reason: String,
}

/// Where one canonical value comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Dotted paths into the payload (`data.object.email`, `items.0.sku`); the first non-empty wins.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A constant instead of a path.
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// Used when the paths yield nothing.
    #[serde(default)]
    pub default: Option<Value>,
    /// Another way to the value when this one yields nothing, e.g. split a full name when no
    /// first name is given.
    #[serde(default)]
    pub or: Option<Box<FieldSpec>>,
}

/// One mapping: (source kind, event types) → a canonical object under a contract version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub name: String,
    pub source_kind: String,
    /// Exact types, or a prefix ending in `*` (`contact.*`).
    pub event_types: Vec<String>,
    /// `contact/v1`.
    pub contract: String,
    /// The record's id in the source system.
    pub record_id: FieldSpec,
    /// When the change happened in the source (RFC 3339 after transforms); defaults to receipt.
    #[serde(default)]
    pub occurred_at: Option<FieldSpec>,
    pub fields: BTreeMap<String, FieldSpec>,
}

/// The canonical record a mapping produced, before it is checked against its contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub record_id: String,
    pub occurred_at: Option<String>,
    pub record: Map<String, Value>,
}

impl Mapping {
    fn parse(file: &str, text: &str, contracts: &[Contract]) -> Result<Self, MappingError> {
        let fail = |reason: String| MappingError {
            file: file.to_owned(),
            reason,
        };
        let mapping: Mapping = serde_yaml_ng::from_str(text).map_err(|e| fail(e.to_string()))?;
        let contract = contracts
            .iter()
            .find(|c| c.id() == mapping.contract)
            .ok_or_else(|| fail(format!("contract {} does not exist", mapping.contract)))?;
        for field in mapping.fields.keys() {
            if !contract.fields.contains_key(field) {
                return Err(fail(format!(
                    "fields.{field}: not a field of {}",
                    mapping.contract
                )));
            }
        }
        let specs = mapping
            .fields
            .iter()
            .map(|(name, spec)| (name.as_str(), spec))
            .chain([("record_id", &mapping.record_id)]);
        for (name, spec) in specs {
            if spec.paths.is_empty()
                && spec.value.is_none()
                && spec.default.is_none()
                && spec.or.is_none()
            {
                return Err(fail(format!("{name}: give paths, a value or a default")));
            }
        }
        Ok(mapping)
    }

    /// Whether this mapping handles `event_type` from a source of `kind`.
    pub fn handles(&self, kind: &str, event_type: &str) -> bool {
        self.source_kind == kind
            && self.event_types.iter().any(|t| match t.strip_suffix('*') {
                Some(prefix) => event_type.starts_with(prefix),
                None => t == event_type,
            })
    }

    /// The object the mapping produces (`contact` of `contact/v1`).
    pub fn object(&self) -> &str {
        self.contract.split('/').next().unwrap_or_default()
    }

    /// Applies the mapping: the record, and the problems met on the way (each naming its field).
    pub fn apply_all(&self, payload: &Value, ctx: &Context) -> (Mapped, Vec<String>) {
        let mut problems = Vec::new();
        let record_id = match transforms::resolve(&self.record_id, payload, ctx) {
            Ok(Some(value)) => transforms::as_text(&value),
            Ok(None) => {
                problems.push(format!(
                    "record id: nothing at {}",
                    self.record_id.paths.join(" or ")
                ));
                String::new()
            }
            Err(problem) => {
                problems.push(format!("record id: {problem}"));
                String::new()
            }
        };
        let occurred_at = match &self.occurred_at {
            Some(spec) => match transforms::resolve(spec, payload, ctx) {
                Ok(value) => value.map(|v| transforms::as_text(&v)),
                Err(problem) => {
                    problems.push(format!("occurred_at: {problem}"));
                    None
                }
            },
            None => None,
        };
        let mut record = Map::new();
        for (name, spec) in &self.fields {
            match transforms::resolve(spec, payload, ctx) {
                Ok(Some(value)) => {
                    record.insert(name.clone(), value);
                }
                Ok(None) => {}
                Err(problem) => problems.push(format!("{}.{name}: {problem}", self.object())),
            }
        }
        (
            Mapped {
                record_id,
                occurred_at,
                record,
            },
            problems,
        )
    }

    /// Applies the mapping; `Err` with the problems if there were any.
    pub fn apply(&self, payload: &Value, ctx: &Context) -> Result<Mapped, Vec<String>> {
        match self.apply_all(payload, ctx) {
            (mapped, problems) if problems.is_empty() => Ok(mapped),
            (_, problems) => Err(problems),
        }
    }
}

/// All mappings in force: built-in ones, replaced or extended by the user's directory.
#[derive(Debug, Clone)]
pub struct Registry {
    mappings: Vec<Mapping>,
}

impl Registry {
    /// Loads the built-in mappings and every `*.yaml` in `dir`; a user file whose `name` matches
    /// a built-in one replaces it.
    pub fn load(dir: Option<&Path>, contracts: &[Contract]) -> Result<Self, MappingError> {
        let mut mappings = BUILT_IN
            .iter()
            .map(|(file, text)| Mapping::parse(file, text, contracts))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dir) = dir {
            let files = switchyard_proto::contracts::yaml_files(dir)
                .map_err(|(file, reason)| MappingError { file, reason })?;
            for (file, text) in files {
                let mapping = Mapping::parse(&file, &text, contracts)?;
                mappings.retain(|m| m.name != mapping.name);
                mappings.push(mapping);
            }
        }
        Ok(Self { mappings })
    }

    /// The mapping for an event, if any (user mappings win, as they come last).
    pub fn find(&self, kind: &str, event_type: &str) -> Option<&Mapping> {
        self.mappings
            .iter()
            .rev()
            .find(|m| m.handles(kind, event_type))
    }

    /// Every mapping, for listings.
    pub fn all(&self) -> &[Mapping] {
        &self.mappings
    }
}

#[cfg(test)]
mod tests;
