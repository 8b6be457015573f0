//! The generic mapping for Standard Webhooks senders: a `contact.*` event whose `data` holds the
//! canonical fields becomes a `contact/v1` Contact, or a list of contract violations.

use serde_json::{Map, Value};
use switchyard_proto::Timestamp;
use switchyard_proto::v1::{Consent, Contact};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The contract every Contact produced here satisfies.
pub const CONTACT_CONTRACT: &str = "contact/v1";

/// The result of mapping one payload.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// A valid Contact, the record's id in the source, and when it changed there.
    Contact {
        contact: Box<Contact>,
        source_object_id: String,
        occurred_at: Option<Timestamp>,
    },
    /// The event type has no mapping (e.g. `invoice.paid` from a contacts-only sender).
    Unmapped,
}

/// Why a payload cannot become a canonical object; each entry names the field.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("contract violation ({contract}): {}", .problems.join("; "))]
pub struct Violation {
    pub contract: &'static str,
    pub problems: Vec<String>,
}

/// Maps a Standard Webhooks payload of `event_type`.
pub fn map_standard_webhook(event_type: &str, body: &[u8]) -> Result<Mapped, Violation> {
    let violation = |problem: String| Violation {
        contract: CONTACT_CONTRACT,
        problems: vec![problem],
    };
    let object = event_type.split('.').next().unwrap_or_default();
    if !matches!(object, "contact" | "customer" | "person") {
        return Ok(Mapped::Unmapped);
    }
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| violation(format!("body: not JSON: {e}")))?;
    let data = payload
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| violation("data: missing or not an object".to_owned()))?;

    let mut problems = Vec::new();
    let source_object_id = match data.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            problems.push("data.id: required (the record's id in the source)".to_owned());
            String::new()
        }
    };
    let email = text(data, &["email", "email_address"]).to_lowercase();
    if email.is_empty() {
        problems.push("data.email: required".to_owned());
    } else if !is_email(&email) {
        problems.push("data.email: not an email address".to_owned());
    }
    let phone = text(data, &["phone", "phone_number"]);
    if !phone.is_empty() && !is_phone(&phone) {
        problems.push("data.phone: not a phone number".to_owned());
    }
    let (mut first_name, mut last_name) = (
        text(data, &["first_name", "firstName", "firstname"]),
        text(data, &["last_name", "lastName", "lastname"]),
    );
    if first_name.is_empty() && last_name.is_empty() {
        let full = text(data, &["name", "full_name"]);
        if let Some((first, last)) = full.rsplit_once(' ') {
            first_name = first.trim().to_owned();
            last_name = last.trim().to_owned();
        } else {
            first_name = full;
        }
    }
    let occurred_at = match data
        .get("updated_at")
        .or_else(|| payload.get("timestamp"))
        .and_then(Value::as_str)
    {
        Some(raw) => match OffsetDateTime::parse(raw, &Rfc3339) {
            Ok(at) => Some(Timestamp {
                seconds: at.unix_timestamp(),
                nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
            }),
            Err(_) => {
                problems.push("timestamp: not an RFC 3339 date-time".to_owned());
                None
            }
        },
        None => None,
    };
    let consent = data
        .get("marketing_consent")
        .and_then(Value::as_bool)
        .map(|marketing| Consent {
            marketing,
            source: text(data, &["consent_source"]),
            given_at: None,
        });
    if !problems.is_empty() {
        return Err(Violation {
            contract: CONTACT_CONTRACT,
            problems,
        });
    }
    Ok(Mapped::Contact {
        contact: Box::new(Contact {
            email,
            phone,
            first_name,
            last_name,
            company_name: text(data, &["company", "company_name"]),
            job_title: text(data, &["job_title", "title"]),
            lifecycle_stage: text(data, &["lifecycle_stage"]).to_lowercase(),
            consent,
            address: None,
        }),
        source_object_id,
        occurred_at,
    })
}

/// The first non-empty string among `keys`, trimmed.
fn text(data: &Map<String, Value>, keys: &[&str]) -> String {
    keys.iter()
        .filter_map(|k| data.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// A pragmatic check: one `@`, something before it, a dotted domain after it, no spaces.
fn is_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Digits with the usual punctuation, 7 to 15 digits (E.164's maximum).
fn is_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_event_maps_to_a_normalised_contact() {
        let body = br#"{"type":"contact.created","timestamp":"2026-11-27T10:00:00Z",
            "data":{"id":42,"email":"  Jane.Doe@Example.COM ","name":"Jane Doe","phone":"+44 20 7946 0958","marketing_consent":true}}"#;
        let Ok(Mapped::Contact {
            contact,
            source_object_id,
            occurred_at,
        }) = map_standard_webhook("contact.created", body)
        else {
            panic!("expected a contact");
        };
        assert_eq!(contact.email, "jane.doe@example.com");
        assert_eq!(
            (contact.first_name.as_str(), contact.last_name.as_str()),
            ("Jane", "Doe")
        );
        assert_eq!(source_object_id, "42");
        assert_eq!(occurred_at.map(|t| t.seconds), Some(1_795_773_600));
        assert_eq!(contact.consent.map(|c| c.marketing), Some(true));
    }

    #[test]
    fn violations_name_every_field() {
        let body = br#"{"type":"contact.created","timestamp":"yesterday","data":{"email":"nope","phone":"12"}}"#;
        let err = map_standard_webhook("contact.created", body).expect_err("violations");
        assert_eq!(err.problems.len(), 4, "{err}");
        let text = err.to_string();
        for field in ["data.id", "data.email", "data.phone", "timestamp"] {
            assert!(text.contains(field), "{text}");
        }
    }

    #[test]
    fn other_objects_are_unmapped() {
        assert_eq!(
            map_standard_webhook("invoice.paid", b"{}"),
            Ok(Mapped::Unmapped)
        );
    }
}
