//! Value evidence: what a sample value says for or against a field's type, and the transforms that
//! make it canonical.

use serde_json::Value;
use switchyard_proto::contracts::{self, FieldRule, FieldType};

use super::checker::Checker;
use super::names::{Split, tokens};

/// What a contract field expects, for the value checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Email,
    /// A phone type, or a string field named like a phone (contact.phone).
    Phone,
    Country,
    Date,
    Datetime,
    Bool,
    Integer,
    Money,
    Enum,
    List,
}

pub(super) fn kind_of(field: &str, rule: &FieldRule) -> Kind {
    match rule.kind {
        FieldType::String
            if tokens(field)
                .iter()
                .any(|t| matches!(t.as_str(), "phone" | "mobile" | "tel" | "cell" | "fax")) =>
        {
            Kind::Phone
        }
        FieldType::String => Kind::Text,
        FieldType::Email => Kind::Email,
        FieldType::Phone => Kind::Phone,
        FieldType::Enum => Kind::Enum,
        FieldType::Bool => Kind::Bool,
        FieldType::Integer => Kind::Integer,
        FieldType::Money => Kind::Money,
        FieldType::Country => Kind::Country,
        FieldType::Date => Kind::Date,
        FieldType::Datetime => Kind::Datetime,
        FieldType::List => Kind::List,
    }
}

impl Kind {
    /// Whether a node of this value can be a candidate at all.
    pub(super) fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::Money => value.is_object(),
            Kind::List => value.is_array(),
            _ => !value.is_object() && !value.is_array(),
        }
    }
}

/// What the value says about a candidate: -1 (contradicts) … 1 (fits), why, and the transforms
/// that make it canonical.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evidence {
    pub score: f64,
    pub why: String,
    pub transforms: Vec<&'static str>,
}

fn ev(score: f64, why: impl Into<String>, transforms: &[&'static str]) -> Evidence {
    Evidence {
        score,
        why: why.into(),
        transforms: transforms.to_vec(),
    }
}

pub(super) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The number of digits when the text looks like a phone number (7–15 digits, only digits,
/// spaces, `+`, `-`, `.` and parentheses; not a date or a decimal).
pub(crate) fn phone_digits(s: &str) -> Option<usize> {
    let s = s.trim();
    let allowed = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    let plus_ok = !s.contains('+') || (s.starts_with('+') && s.matches('+').count() == 1);
    let decimal = s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (allowed && plus_ok && !decimal && !is_date(s) && (7..=15).contains(&digits)).then_some(digits)
}

pub(crate) fn is_date(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format).is_ok()
}

/// `unix_seconds` or `unix_millis` when the value is a plausible unix time (2000–2100).
pub(crate) fn unix_transform(value: &Value) -> Option<&'static str> {
    let n = value.as_i64().or_else(|| {
        let s = value.as_str()?.trim();
        (s.len() >= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    })?;
    const FROM: i64 = 946_684_800; // 2000-01-01
    const TO: i64 = 4_102_444_800; // 2100-01-01
    if (FROM..=TO).contains(&n) {
        Some("unix_seconds")
    } else if (FROM * 1000..=TO * 1000).contains(&n) {
        Some("unix_millis")
    } else {
        None
    }
}

fn bool_text(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no"
    )
}

/// A short, non-personal value for a comment (codes, enum values); never emails or names.
pub(super) fn code(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 24 {
        format!(
            "{:?}",
            format!("{}…", s.chars().take(24).collect::<String>())
        )
    } else {
        format!("{s:?}")
    }
}

/// The value evidence for a candidate of `kind` (before the dry run).
pub(crate) fn evidence(
    kind: Kind,
    field: &str,
    rule: &FieldRule,
    value: &Value,
    split: Option<Split>,
    checker: &Checker,
) -> Evidence {
    let text = value.as_str().map(str::trim);
    if is_empty(value) {
        let transforms: &[&'static str] = match (kind, split) {
            (_, Some(Split::First)) => &["trim", "first_name"],
            (_, Some(Split::Last)) => &["trim", "last_name"],
            (Kind::Email, _) => &["trim", "lowercase"],
            (Kind::Phone, _) => &["trim", "e164"],
            (Kind::Country, _) => &["trim", "uppercase"],
            (Kind::Text | Kind::Date, _) => &["trim"],
            (Kind::Enum, _) => &["trim", "lowercase"],
            _ => &[],
        };
        return ev(0.0, "no value in the sample to check", transforms);
    }
    match kind {
        Kind::Email => match text {
            Some(s) if contracts::is_email(s) => {
                ev(1.0, "value looks like an email", &["trim", "lowercase"])
            }
            _ => ev(-1.0, "value is not an email", &["trim", "lowercase"]),
        },
        Kind::Phone => match (text, value) {
            (Some(s), _) => match phone_digits(s) {
                Some(n) => ev(
                    1.0,
                    format!("value looks like a phone number ({n} digits)"),
                    &["trim", "e164"],
                ),
                None => ev(-1.0, "value is not a phone number", &["trim", "e164"]),
            },
            (None, Value::Number(n)) if phone_digits(&n.to_string()).is_some() => ev(
                0.3,
                "value is a number with a phone's digit count",
                &["to_string", "e164"],
            ),
            _ => ev(-1.0, "value is not a phone number", &["trim", "e164"]),
        },
        Kind::Country => match text {
            Some(s) if checker.is_country(s) => ev(
                1.0,
                format!("value {} is an ISO 3166-1 alpha-2 code", code(s)),
                &["trim", "uppercase"],
            ),
            Some(s)
                if s.chars().count() > 3 && s.chars().all(|c| c.is_alphabetic() || c == ' ') =>
            {
                ev(
                    -0.5,
                    format!(
                        "value {} is a country name, not a code; add a {{ map: … }}",
                        code(s)
                    ),
                    &["trim"],
                )
            }
            _ => ev(
                -1.0,
                "value is not an ISO 3166-1 alpha-2 code",
                &["trim", "uppercase"],
            ),
        },
        Kind::Date => match (unix_transform(value), text) {
            (_, Some(s)) if is_date(s) => ev(1.0, "value is a date (YYYY-MM-DD)", &["trim"]),
            (Some(unix), _) if checker.features.date => ev(
                0.7,
                "value is a unix time; `date` keeps its UTC day",
                if unix == "unix_millis" {
                    &["unix_millis", "date"]
                } else {
                    &["unix_seconds", "date"]
                },
            ),
            (_, Some(s)) if checker.features.date && checker.is_datetime(s) => ev(
                0.8,
                "value is a date-time; `date` keeps its UTC day",
                &["date"],
            ),
            (_, Some(s)) if checker.is_datetime(s) => ev(
                -0.3,
                "value is a date-time; the contract wants YYYY-MM-DD and no transform cuts the time off",
                &["trim"],
            ),
            _ => ev(-1.0, "value is not a date", &["trim"]),
        },
        Kind::Datetime => match (unix_transform(value), text) {
            (Some(t), _) => ev(
                0.9,
                format!(
                    "value is a unix time in {}",
                    if t == "unix_millis" {
                        "milliseconds"
                    } else {
                        "seconds"
                    }
                ),
                &[t],
            ),
            (None, Some(s)) if checker.is_datetime(s) => {
                ev(1.0, "value is a date-time", &["datetime_utc"])
            }
            (None, Some(s)) if checker.features.xero_date && s.starts_with("/Date(") => {
                ev(0.9, "value is a Xero /Date(…)/", &["xero_date"])
            }
            _ => ev(-1.0, "value is not a date-time the transforms read", &[]),
        },
        Kind::Bool => match (value, text) {
            (Value::Bool(_), _) => ev(1.0, "value is true/false", &[]),
            (_, Some(s)) if bool_text(s) => {
                ev(0.8, format!("value {} reads as yes/no", code(s)), &["bool"])
            }
            _ => ev(-1.0, "value is not true/false", &[]),
        },
        Kind::Integer => match (value, text) {
            (Value::Number(n), _) if n.is_i64() || n.is_u64() => {
                ev(1.0, "value is an integer", &[])
            }
            (_, Some(s))
                if checker.features.integer
                    && s.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                ev(0.7, "value is a whole number as text", &["integer"])
            }
            _ => ev(-1.0, "value is not an integer", &[]),
        },
        Kind::Enum => match text {
            Some(s) if rule.values.iter().any(|v| v == s) => ev(
                1.0,
                format!("value {} is one of the contract's values", code(s)),
                &[],
            ),
            Some(s) if rule.values.iter().any(|v| *v == s.to_lowercase()) => ev(
                0.9,
                format!(
                    "value {} is one of the contract's values in lower case",
                    code(s)
                ),
                &["trim", "lowercase"],
            ),
            Some(s) => ev(
                -0.2,
                format!(
                    "value {} is not one of {}; add a {{ map: … }}",
                    code(s),
                    rule.values.join(", ")
                ),
                &["trim", "lowercase"],
            ),
            None => ev(-1.0, "value is not text", &[]),
        },
        Kind::Money => {
            let money = value.as_object();
            let units = money
                .and_then(|m| m.get("minor_units"))
                .and_then(Value::as_i64);
            let currency = money
                .and_then(|m| m.get("currency"))
                .and_then(Value::as_str);
            if units.is_some() && currency.is_some_and(|c| checker.is_currency(c)) {
                ev(1.0, "value is {minor_units, currency}", &[])
            } else {
                ev(-1.0, "value is not {minor_units, currency}", &[])
            }
        }
        Kind::List => ev(1.0, "value is a list", &[]),
        Kind::Text => text_evidence(field, value, split, checker),
    }
}

fn text_evidence(field: &str, value: &Value, split: Option<Split>, checker: &Checker) -> Evidence {
    let Some(s) = value.as_str().map(str::trim) else {
        return match value {
            Value::Number(_) => ev(0.3, "value is a number", &["to_string"]),
            _ => ev(-1.0, "value is not text", &[]),
        };
    };
    let person = matches!(field, "first_name" | "last_name");
    let looks_like = if contracts::is_email(s) {
        Some("an email")
    } else if is_date(s) || checker.is_datetime(s) {
        Some("a date")
    } else if person && (s.starts_with("http://") || s.starts_with("https://")) {
        Some("a URL")
    } else {
        None
    };
    if let Some(other) = looks_like {
        return ev(
            -0.5,
            format!("value looks like {other}, not {}", field.replace('_', " ")),
            &["trim"],
        );
    }
    if let Some(split) = split {
        let transforms: &[&'static str] = match split {
            Split::First => &["trim", "first_name"],
            Split::Last => &["trim", "last_name"],
        };
        return if s.split_whitespace().count() >= 2 {
            ev(0.5, "value has more than one word", transforms)
        } else {
            ev(
                -0.1,
                "value is one word: it may not be a person's full name",
                transforms,
            )
        };
    }
    if person {
        if s.chars().any(|c| c.is_ascii_digit()) {
            ev(-0.3, "value has digits, unlike a name", &["trim"])
        } else {
            ev(0.6, "value looks like a name", &["trim"])
        }
    } else {
        ev(0.4, "value is text", &["trim"])
    }
}
