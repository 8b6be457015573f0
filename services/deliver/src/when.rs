//! A flow's `when`: field → expected value, every pair must hold on the golden record, for any
//! canonical object. Fields are dotted paths (`status`, `stage`, `consent.marketing`,
//! `total.currency`) or the contracts' names (`marketing_consent`, `country`, `deal_id`),
//! resolved against the protobuf descriptors (`switchyard_proto::fields`); the value is read from
//! the record's encoded form, so no object needs code of its own here. Configuration loading
//! resolves the same paths, so a field that does not exist never gets this far.

use std::collections::BTreeMap;

use serde_json::Value;
use switchyard_proto::fields::{FieldPath, Leaf, resolve};
use switchyard_proto::v1::canonical_object::Object;

/// Whether `record` (an `object` such as `invoice`) has every value `when` asks for. An empty
/// `when` matches everything; a record of another object, or a field that does not resolve,
/// matches nothing.
pub(crate) fn matches(
    object: &str,
    when: &BTreeMap<String, Value>,
    record: Option<&Object>,
) -> bool {
    if when.is_empty() {
        return true;
    }
    let Some((name, bytes)) = record.map(encoded) else {
        return false;
    };
    if name != object {
        return false;
    }
    when.iter().all(|(field, expected)| {
        resolve(object, field).is_ok_and(|path| value(&bytes, &path) == *expected)
    })
}

/// The object's name and its message's encoding.
fn encoded(object: &Object) -> (&'static str, Vec<u8>) {
    (object.name(), object.encoded().1)
}

/// The value at `path` in an encoded message; a field that is absent has its protobuf default
/// (`""`, `false`, `0`), so `{consent.marketing: false}` matches a record without consent.
fn value(bytes: &[u8], path: &FieldPath) -> Value {
    find(bytes, &path.numbers, path.leaf).unwrap_or_else(|| match path.leaf {
        Leaf::Text => Value::from(""),
        Leaf::Bool => Value::from(false),
        Leaf::Integer => Value::from(0),
    })
}

/// Walks the protobuf wire format: the last occurrence of a scalar wins, as in protobuf itself.
fn find(mut bytes: &[u8], numbers: &[u32], leaf: Leaf) -> Option<Value> {
    let (&number, rest) = numbers.split_first()?;
    let mut found = None;
    while !bytes.is_empty() {
        let key = prost::encoding::decode_varint(&mut bytes).ok()?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                let v = prost::encoding::decode_varint(&mut bytes).ok()?;
                if field == number && rest.is_empty() {
                    found = match leaf {
                        Leaf::Bool => Some(Value::from(v != 0)),
                        // Negative int32 and int64 are ten-byte two's complement varints.
                        #[allow(clippy::cast_possible_wrap)]
                        Leaf::Integer => Some(Value::from(v as i64)),
                        Leaf::Text => None,
                    };
                }
            }
            1 => bytes = bytes.get(8..)?,
            5 => bytes = bytes.get(4..)?,
            2 => {
                let len = usize::try_from(prost::encoding::decode_varint(&mut bytes).ok()?).ok()?;
                let (inner, after) = (bytes.get(..len)?, bytes.get(len..)?);
                bytes = after;
                if field == number {
                    if rest.is_empty() {
                        if leaf == Leaf::Text {
                            found = Some(Value::from(String::from_utf8_lossy(inner).into_owned()));
                        }
                    } else if let Some(v) = find(inner, rest, leaf) {
                        found = Some(v);
                    }
                }
            }
            _ => return None,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_proto::v1::{Address, Consent, Contact, Deal, ExternalRef, Invoice, Money};

    use super::*;

    fn when(pairs: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(pairs).expect("a map")
    }

    fn invoice(status: &str) -> Object {
        Object::Invoice(Invoice {
            invoice_number: "INV-1".into(),
            status: status.into(),
            total: Some(Money {
                minor_units: -2500,
                currency: "EUR".into(),
            }),
            deal: Some(ExternalRef {
                system: "crm".into(),
                object: "deal".into(),
                id: "58213".into(),
            }),
            ..Invoice::default()
        })
    }

    #[test]
    fn invoices_match_on_top_level_and_nested_fields() {
        let paid = invoice("paid");
        let m = |w: Value, o: &Object| matches("invoice", &when(w), Some(o));
        assert!(m(json!({"status": "paid"}), &paid));
        assert!(!m(json!({"status": "paid"}), &invoice("open")));
        assert!(m(json!({"status": "paid", "total.currency": "EUR"}), &paid));
        assert!(!m(
            json!({"status": "paid", "total.currency": "USD"}),
            &paid
        ));
        assert!(m(json!({"total.minor_units": -2500}), &paid));
        assert!(m(json!({"deal_id": "58213", "deal.system": "crm"}), &paid));
        // Absent values read as their defaults.
        assert!(m(
            json!({"amount_paid.currency": "", "customer_id": ""}),
            &paid
        ));
        assert!(m(json!({}), &paid));
        assert!(
            !m(json!({"stauts": "paid"}), &paid),
            "an unknown field matches nothing"
        );
    }

    #[test]
    fn contacts_keep_their_contract_names() {
        let lead = Object::Contact(Contact {
            email: "ada@example.com".into(),
            lifecycle_stage: "lead".into(),
            consent: Some(Consent {
                marketing: true,
                ..Consent::default()
            }),
            address: Some(Address {
                country: "GB".into(),
                ..Address::default()
            }),
            ..Contact::default()
        });
        let m = |w: Value, o: &Object| matches("contact", &when(w), Some(o));
        assert!(m(
            json!({"lifecycle_stage": "lead", "marketing_consent": true}),
            &lead
        ));
        assert!(m(
            json!({"lifecycle_stage": "lead", "consent.marketing": true, "country": "GB"}),
            &lead
        ));
        assert!(!m(json!({"lifecycle_stage": "customer"}), &lead));
        let no_consent = Object::Contact(Contact {
            lifecycle_stage: "lead".into(),
            ..Contact::default()
        });
        assert!(!m(json!({"marketing_consent": true}), &no_consent));
        assert!(m(json!({"marketing_consent": false}), &no_consent));
    }

    #[test]
    fn a_record_of_another_object_or_none_matches_nothing() {
        let deal = Object::Deal(Deal {
            stage: "won".into(),
            ..Deal::default()
        });
        assert!(matches("deal", &when(json!({"stage": "won"})), Some(&deal)));
        assert!(!matches(
            "invoice",
            &when(json!({"status": "won"})),
            Some(&deal)
        ));
        assert!(!matches("deal", &when(json!({"stage": "won"})), None));
        assert!(matches("deal", &when(json!({})), None));
    }
}
