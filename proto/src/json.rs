//! Any Switchyard message as JSON, through the contracts' compiled descriptors, without code per
//! message: field names as in the `.proto` files, timestamps as RFC 3339, enums by name, 64-bit
//! integers as strings (protobuf's JSON mapping: a double would lose digits), bytes by their size.
//! Monitor shows dead letters with it; deliver's generic webhook sends records with it.

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, ReflectMessage as _, Value};
use serde_json::{Map, Value as Json, json};

use crate::v1::canonical_object::Object;

/// Every message of the contracts.
pub fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// The encoded message `bytes` of type `name` (`switchyard.v1.Company`) as JSON; `None` when it
/// does not decode as that type.
pub fn to_json(name: &str, bytes: &[u8]) -> Option<Json> {
    let descriptor = pool()?.get_message_by_name(name)?;
    let message = DynamicMessage::decode(descriptor, bytes).ok()?;
    Some(message_json(&message))
}

impl Object {
    /// The object's name in the contracts (`company`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lead(_) => "lead",
            Self::Contact(_) => "contact",
            Self::Company(_) => "company",
            Self::Product(_) => "product",
            Self::Deal(_) => "deal",
            Self::Order(_) => "order",
            Self::Invoice(_) => "invoice",
        }
    }

    /// Its protobuf message type (`switchyard.v1.Company`) and encoding.
    pub fn encoded(&self) -> (&'static str, Vec<u8>) {
        match self {
            Self::Lead(m) => ("switchyard.v1.Lead", m.encode_to_vec()),
            Self::Contact(m) => ("switchyard.v1.Contact", m.encode_to_vec()),
            Self::Company(m) => ("switchyard.v1.Company", m.encode_to_vec()),
            Self::Product(m) => ("switchyard.v1.Product", m.encode_to_vec()),
            Self::Deal(m) => ("switchyard.v1.Deal", m.encode_to_vec()),
            Self::Order(m) => ("switchyard.v1.Order", m.encode_to_vec()),
            Self::Invoice(m) => ("switchyard.v1.Invoice", m.encode_to_vec()),
        }
    }

    /// The record as its contract names its fields: the message's fields, with the values the
    /// contracts flatten (`country`, `postal_code`, `marketing_consent`, `consent_source`) taken
    /// out of their `address` and `consent`.
    pub fn contract_json(&self) -> Map<String, Json> {
        let (name, bytes) = self.encoded();
        let Some(Json::Object(mut record)) = to_json(name, &bytes) else {
            return Map::new();
        };
        for (flat, path) in crate::fields::FLATTENED {
            let Some((parent, child)) = path.split_once('.') else {
                continue;
            };
            let Some(Json::Object(inner)) = record.get_mut(parent) else {
                continue;
            };
            if let Some(value) = inner.remove(child) {
                let empty = inner.is_empty();
                record.insert((*flat).to_owned(), value);
                if empty {
                    record.remove(parent);
                }
            }
        }
        record
    }
}

pub fn message_json(message: &DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    if descriptor.full_name() == "google.protobuf.Timestamp" {
        let field = |name: &str| match message.get_field_by_name(name).as_deref() {
            Some(Value::I64(v)) => *v,
            Some(Value::I32(v)) => i64::from(*v),
            _ => 0,
        };
        let at = time::OffsetDateTime::from_unix_timestamp(field("seconds"))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        return at.map_or(Json::Null, Json::String);
    }
    let mut out = Map::new();
    for (field, value) in message.fields() {
        out.insert(field.name().to_owned(), value_json(&field.kind(), value));
    }
    Json::Object(out)
}

fn value_json(kind: &Kind, value: &Value) -> Json {
    match value {
        Value::Bool(v) => json!(v),
        Value::I32(v) => json!(v),
        // 64-bit integers as strings, as protobuf's JSON mapping does (a double loses digits).
        Value::I64(v) => json!(v.to_string()),
        Value::U32(v) => json!(v),
        Value::U64(v) => json!(v.to_string()),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::String(v) => json!(v),
        Value::Bytes(v) => json!(format!("<{} bytes>", v.len())),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(e) => e
                .get_value(*number)
                .map_or_else(|| json!(number), |v| json!(v.name())),
            _ => json!(number),
        },
        Value::Message(m) => message_json(m),
        Value::List(items) => Json::Array(items.iter().map(|v| value_json(kind, v)).collect()),
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match key {
                    MapKey::Bool(k) => k.to_string(),
                    MapKey::I32(k) => k.to_string(),
                    MapKey::I64(k) => k.to_string(),
                    MapKey::U32(k) => k.to_string(),
                    MapKey::U64(k) => k.to_string(),
                    MapKey::String(k) => k.clone(),
                };
                out.insert(key, value_json(&value_kind, value));
            }
            Json::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Address, Company, Money, Product};

    #[test]
    fn a_company_reads_as_its_contract_names_it() {
        let company = Object::Company(Company {
            name: "Acme Ltd".into(),
            domain: "acme.co.uk".into(),
            tax_id: "GB123456789".into(),
            address: Some(Address {
                country: "GB".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            Json::Object(company.contract_json()),
            json!({"name": "Acme Ltd", "domain": "acme.co.uk", "tax_id": "GB123456789", "country": "GB"})
        );
        let product = Object::Product(Product {
            sku: "TEE-M".into(),
            unit_price: Some(Money {
                minor_units: 1999,
                currency: "EUR".into(),
            }),
            ..Default::default()
        });
        assert_eq!(
            Json::Object(product.contract_json()),
            json!({"sku": "TEE-M", "unit_price": {"minor_units": "1999", "currency": "EUR"}})
        );
    }
}
