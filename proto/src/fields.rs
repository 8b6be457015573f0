//! Canonical field paths — `status`, `total.currency`, `consent.marketing` — resolved against the
//! compiled descriptors of the canonical messages, so configuration (a flow's `when`) can name any
//! field of any object and a typo is found at start-up, not as a filter that never matches.

use std::sync::OnceLock;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

/// The kind of value a path ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Text,
    Bool,
    /// Any integer (and enum) field: compared as an `i64`.
    Integer,
}

impl Leaf {
    /// What a configured value of this kind looks like, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Text => "a text",
            Self::Bool => "true or false",
            Self::Integer => "a whole number",
        }
    }

    /// Whether a configured JSON value can be compared with this kind of field.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            Self::Text => value.is_string(),
            Self::Bool => value.is_boolean(),
            Self::Integer => value.is_i64() || value.is_u64(),
        }
    }
}

/// A resolved path: the protobuf field numbers from the object's message down to a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub numbers: Vec<u32>,
    pub leaf: Leaf,
}

/// The contract names that stand for a value inside the record's own `address` or `consent`
/// (rather than a reference to another record): a record rendered for its contract carries them
/// flat (`switchyard_proto::json`).
pub const FLATTENED: [(&str, &str); 4] = [
    ("marketing_consent", "consent.marketing"),
    ("consent_source", "consent.source"),
    ("country", "address.country"),
    ("postal_code", "address.postal_code"),
];

/// Contract names that are not protobuf paths (the contracts flatten a few nested values), each
/// with the path it stands for. They resolve only on objects that have that path.
const ALIASES: [(&str, &str); 8] = [
    FLATTENED[0],
    FLATTENED[1],
    FLATTENED[2],
    FLATTENED[3],
    ("customer_id", "customer.id"),
    ("contact_id", "contact.id"),
    ("company_id", "company.id"),
    ("deal_id", "deal.id"),
];

fn descriptors() -> &'static FileDescriptorSet {
    static SET: OnceLock<FileDescriptorSet> = OnceLock::new();
    SET.get_or_init(|| FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap_or_default())
}

/// The message named `.switchyard.v1.Name` (or `.google.protobuf.Timestamp`).
fn message(full_name: &str) -> Option<&'static DescriptorProto> {
    let full_name = full_name.strip_prefix('.').unwrap_or(full_name);
    descriptors().file.iter().find_map(|file| {
        let name = full_name.strip_prefix(file.package())?.strip_prefix('.')?;
        file.message_type.iter().find(|m| m.name() == name)
    })
}

/// The message of a canonical object (`invoice` → `switchyard.v1.Invoice`).
fn object_message(object: &str) -> Option<&'static DescriptorProto> {
    let mut chars = object.chars();
    let first = chars.next()?;
    let name = format!(
        "switchyard.v1.{}{}",
        first.to_ascii_uppercase(),
        chars.as_str()
    );
    message(&name)
}

/// Resolves `path` (dotted protobuf field names, or a contract name such as `marketing_consent`)
/// on the canonical `object` (`contact`, `invoice`, ...). The error says what is wrong and what
/// the object has.
pub fn resolve(object: &str, path: &str) -> Result<FieldPath, String> {
    walk(object, path, true)
}

/// `resolve`; `explain` lists the object's fields (and usable contract names) in the error.
fn walk(object: &str, path: &str, explain: bool) -> Result<FieldPath, String> {
    let root =
        object_message(object).ok_or_else(|| format!("{object:?} is not a canonical object"))?;
    let path = ALIASES
        .iter()
        .find(|(alias, _)| *alias == path)
        .map_or(path, |(_, target)| *target);
    let mut current = root;
    let mut numbers = Vec::new();
    let mut walked = String::new();
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let on = if walked.is_empty() {
            object.to_owned()
        } else {
            walked.clone()
        };
        let field = current
            .field
            .iter()
            .find(|f| f.name() == *segment)
            .ok_or_else(|| {
                let mut known: Vec<&str> = current.field.iter().map(|f| f.name()).collect();
                if walked.is_empty() && explain {
                    known.extend(
                        ALIASES
                            .iter()
                            .filter(|(alias, _)| walk(object, alias, false).is_ok())
                            .map(|(alias, _)| *alias),
                    );
                }
                format!(
                    "{on} has no field {segment:?} (it has {})",
                    known.join(", ")
                )
            })?;
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        numbers.push(u32::try_from(field.number()).unwrap_or_default());
        if field.label() == Label::Repeated {
            return Err(format!(
                "{walked} is a list: a filter compares single values"
            ));
        }
        let last = i + 1 == segments.len();
        let leaf = match field.r#type() {
            Type::String => Some(Leaf::Text),
            Type::Bool => Some(Leaf::Bool),
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Enum => {
                Some(Leaf::Integer)
            }
            Type::Message => None,
            other => {
                return Err(format!(
                    "{walked} is a {other:?} field, which cannot be filtered on"
                ));
            }
        };
        match (leaf, last) {
            (Some(leaf), true) => return Ok(FieldPath { numbers, leaf }),
            (Some(_), false) => {
                return Err(format!("{walked} is a single value, not a group of fields"));
            }
            (None, _) => {
                current = message(field.type_name())
                    .ok_or_else(|| format!("{walked}: no descriptor for {}", field.type_name()))?;
                if last {
                    let parts: Vec<&str> = current.field.iter().map(|f| f.name()).collect();
                    return Err(format!(
                        "{walked} is a group of fields: name one of {}",
                        parts
                            .iter()
                            .map(|p| format!("{walked}.{p}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    Err("an empty field name".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_and_contract_names_resolve_to_field_numbers() {
        assert_eq!(
            resolve("invoice", "status"),
            Ok(FieldPath {
                numbers: vec![2],
                leaf: Leaf::Text
            })
        );
        assert_eq!(
            resolve("invoice", "total.currency"),
            Ok(FieldPath {
                numbers: vec![7, 2],
                leaf: Leaf::Text
            })
        );
        assert_eq!(
            resolve("invoice", "total.minor_units"),
            Ok(FieldPath {
                numbers: vec![7, 1],
                leaf: Leaf::Integer
            })
        );
        assert_eq!(resolve("invoice", "deal_id"), resolve("invoice", "deal.id"));
        assert_eq!(
            resolve("contact", "marketing_consent"),
            Ok(FieldPath {
                numbers: vec![8, 1],
                leaf: Leaf::Bool
            })
        );
        assert_eq!(
            resolve("contact", "consent.marketing"),
            resolve("contact", "marketing_consent")
        );
        assert_eq!(
            resolve("company", "country"),
            resolve("company", "address.country")
        );
        assert_eq!(resolve("deal", "stage").map(|p| p.leaf), Ok(Leaf::Text));
    }

    #[test]
    fn unknown_lists_and_groups_are_refused_with_what_the_object_has() {
        let typo = resolve("invoice", "stauts").expect_err("refused");
        assert!(typo.contains("invoice has no field \"stauts\""), "{typo}");
        assert!(
            typo.contains("status") && typo.contains("deal_id"),
            "{typo}"
        );
        assert!(
            resolve("invoice", "total.curency")
                .expect_err("refused")
                .contains("total has no field")
        );
        assert!(
            resolve("invoice", "line_items")
                .expect_err("refused")
                .contains("is a list")
        );
        assert!(
            resolve("invoice", "total")
                .expect_err("refused")
                .contains("total.currency")
        );
        assert!(
            resolve("invoice", "status.x")
                .expect_err("refused")
                .contains("single value")
        );
        // An alias exists only where its target does.
        assert!(resolve("product", "country").is_err());
        assert!(resolve("widget", "status").is_err());
    }
}
