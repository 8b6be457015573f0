//! Canonical values in the forms vendors' APIs take: money as a decimal in the currency's minor
//! unit exponent (never through a float calculation), dates, display names, country names, and
//! the golden record's crosswalk ids in a given system.

use serde_json::Value;
use switchyard_proto::v1::{Contact, ExternalRef, GoldenChange, Money};
use time::OffsetDateTime;

/// The amount as decimal text, e.g. 1999 EUR → `19.99`, 500 JPY → `500`.
pub(crate) fn decimal_text(money: &Money) -> String {
    let exponent = iso_currency::Currency::from_code(&money.currency.to_uppercase())
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    let minor = money.minor_units;
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10_i64.pow(u32::from(exponent));
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// The amount as a JSON number for APIs that take numbers (QuickBooks, Xero, Salesforce). The
/// decimal is formed in integers; the JSON number prints it back exactly.
pub(crate) fn decimal_number(money: &Money) -> Value {
    let text = decimal_text(money);
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::String(text), Value::Number)
}

/// `YYYY-MM-DD` (UTC) of a timestamp.
pub(crate) fn date(at: Option<&switchyard_proto::Timestamp>) -> Option<String> {
    let at = OffsetDateTime::from_unix_timestamp(at?.seconds).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
}

/// The name people see: first and last name, else the company, else the email.
pub(crate) fn display_name(contact: &Contact) -> String {
    let name = format!("{} {}", contact.first_name.trim(), contact.last_name.trim());
    let name = name.trim();
    if !name.is_empty() {
        name.to_owned()
    } else if !contact.company_name.trim().is_empty() {
        contact.company_name.trim().to_owned()
    } else {
        contact.email.clone()
    }
}

/// The English short name of an ISO 3166-1 alpha-2 code (what Klaviyo's `location.country`
/// holds); the code itself when unknown.
pub(crate) fn country_name(code: &str) -> String {
    isocountry::CountryCode::for_alpha2_caseless(code)
        .map_or_else(|_| code.to_owned(), |c| c.name().to_owned())
}

/// The record's id in `system` (the destination's own source) for `objects`, if the crosswalk
/// has one.
pub(crate) fn own_id<'a>(
    change: &'a GoldenChange,
    system: Option<&str>,
    objects: &[&str],
) -> Option<&'a str> {
    let system = system?;
    change
        .external_refs
        .iter()
        .find(|r| r.system == system && objects.contains(&r.object.as_str()) && !r.id.is_empty())
        .map(|r| r.id.as_str())
}

/// A reference's id when it points into `system`.
pub(crate) fn ref_in<'a>(reference: &'a ExternalRef, system: Option<&str>) -> Option<&'a str> {
    (Some(reference.system.as_str()) == system && !reference.id.is_empty())
        .then_some(reference.id.as_str())
}

/// Inserts `value` under `key` unless it is empty text: fields a flow left out, or a record
/// never had, are left out of the body rather than sent blank (which would erase the vendor's
/// value).
pub(crate) fn put(map: &mut serde_json::Map<String, Value>, key: &str, value: impl Into<Value>) {
    let value = value.into();
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.to_owned(), value);
    }
}

/// A JSON object from `(key, value)` pairs, empty values left out (see [`put`]).
pub(crate) fn object<const N: usize>(pairs: [(&str, Value); N]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        put(&mut map, key, value);
    }
    map
}

/// A stable idempotency key of at most `max` characters for one change of one flow and one
/// kind of write: the readable form when it fits, else its MD5.
pub(crate) fn idempotency_key(flow_key: &str, what: &str, max: usize) -> String {
    let key = format!("{flow_key}:{what}");
    if key.len() <= max {
        key
    } else {
        format!("{:x}", md5::compute(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn money(minor_units: i64, currency: &str) -> Money {
        Money {
            minor_units,
            currency: currency.to_owned(),
        }
    }

    #[test]
    fn amounts_keep_the_currency_exponent() {
        assert_eq!(decimal_text(&money(1999, "EUR")), "19.99");
        assert_eq!(decimal_text(&money(5, "usd")), "0.05");
        assert_eq!(decimal_text(&money(-1250, "GBP")), "-12.50");
        assert_eq!(decimal_text(&money(500, "JPY")), "500");
        assert_eq!(decimal_text(&money(1234, "KWD")), "1.234");
        assert_eq!(decimal_number(&money(1250, "GBP")), json!(12.5));
    }

    #[test]
    fn keys_fit_the_vendor_limit() {
        assert_eq!(idempotency_key("f:g:1", "customer", 50), "f:g:1:customer");
        let long = idempotency_key(&"x".repeat(60), "customer", 50);
        assert_eq!(long.len(), 32);
    }

    #[test]
    fn countries_are_named() {
        assert_eq!(
            country_name("gb"),
            "United Kingdom of Great Britain and Northern Ireland"
        );
        assert_eq!(country_name("ZZ"), "ZZ");
    }
}
