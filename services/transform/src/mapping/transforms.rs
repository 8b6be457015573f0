//! The transforms a mapping can chain: text clean-up, E.164 phones, names, dates to UTC, enum maps.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use switchyard_proto::phone::{self, Certainty, Phone};
use switchyard_proto::redact;

use super::FieldSpec;

/// What transforms need to know about the deployment and the record at hand.
#[derive(Debug, Clone)]
pub struct Context {
    /// Region for phone numbers written without a country code, when the record gives none.
    pub default_region: phonenumber::country::Id,
    /// The record's own country (its mapped `country` field), which a national phone number is
    /// read in first; set per record by [`super::Mapping::apply_all`].
    pub record_country: Option<phonenumber::country::Id>,
}

impl Context {
    /// The deployment's context, before any record.
    pub fn new(default_region: phonenumber::country::Id) -> Self {
        Self {
            default_region,
            record_country: None,
        }
    }
}

/// One step of a field's transform chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Transform {
    /// `trim`, `lowercase`, `uppercase`, `e164`, `first_name`, `last_name`, `datetime_utc`,
    /// `unix_seconds`, `unix_millis`, `to_string`, `bool`.
    Named(Named),
    /// `{ map: { vendor value: canonical value } }`; unmapped values pass through.
    Map {
        map: std::collections::BTreeMap<String, String>,
    },
    /// `{ equals: x }`: true when the value is `x`.
    Equals { equals: Value },
    /// `{ minor_units: n }`: a decimal amount in major units to integer minor units with `n`
    /// decimals (0 for JPY, 3 for KWD); plain `minor_units` means 2.
    MinorUnits { minor_units: u32 },
    /// `{ set: x }`: any value present becomes `x` (a cancellation time means "cancelled").
    Set { set: Value },
}

/// The named transforms.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Named {
    Trim,
    Lowercase,
    Uppercase,
    E164,
    FirstName,
    LastName,
    DatetimeUtc,
    UnixSeconds,
    UnixMillis,
    ToString,
    Bool,
    /// Any date-time or `YYYY-MM-DD` to `YYYY-MM-DD` (the UTC day of a date-time).
    Date,
    /// A decimal amount in major units to minor units with two decimals (`"19.99"` → 1999).
    MinorUnits,
    /// A number, or text holding one, to an integer (`"2"` → 2).
    Integer,
    /// Xero's `/Date(1573755038314+0000)/` (Unix milliseconds, UTC) to UTC RFC 3339.
    XeroDate,
}

/// A value at a dotted path (`a.b.0.c`), if present and not null or empty.
pub fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = payload;
    for part in path.split('.') {
        node = match node {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match node {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => Some(other),
    }
}

/// A value as text (strings bare, numbers and booleans written out).
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves a field: first non-empty path (or the constant), then the transforms, then the
/// default. `Ok(None)` when there is nothing; `Err` names what could not be transformed.
pub fn resolve(spec: &FieldSpec, payload: &Value, ctx: &Context) -> Result<Option<Value>, String> {
    let found = match (&spec.value, &spec.object, &spec.each) {
        (Some(constant), _, _) => Some(constant.clone()),
        (None, Some(fields), Some(list)) => match lookup(payload, list) {
            Some(Value::Array(elements)) => {
                let mut built = Vec::with_capacity(elements.len());
                let wanted = |e: &Value| {
                    spec.each_having
                        .as_ref()
                        .is_none_or(|p| lookup(e, p).is_some())
                };
                for (i, element) in elements.iter().enumerate().filter(|(_, e)| wanted(e)) {
                    let item = object(fields, element, ctx).map_err(|e| format!("{i}.{e}"))?;
                    built.extend(item);
                }
                Some(Value::Array(built))
            }
            Some(other) => return Err(format!("{list}: {} is not a list", redact::value(other))),
            None => None,
        },
        (None, Some(fields), None) => object(fields, payload, ctx)?,
        (None, None, _) if !spec.join.is_empty() => {
            let parts: Vec<String> = spec
                .join
                .iter()
                .filter_map(|p| lookup(payload, p))
                .map(|v| as_text(v).trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            let separator = spec.separator.as_deref().unwrap_or(" ");
            (!parts.is_empty()).then(|| Value::String(parts.join(separator)))
        }
        (None, None, _) => spec.paths.iter().find_map(|p| lookup(payload, p)).cloned(),
    };
    let mut value = found;
    for transform in &spec.transforms {
        let Some(current) = value.take() else {
            break;
        };
        value = apply(transform, current, ctx)?;
    }
    match (value, &spec.or) {
        (Some(value), _) => Ok(Some(value)),
        (None, Some(fallback)) => {
            resolve(fallback, payload, ctx).map(|v| v.or_else(|| spec.default.clone()))
        }
        (None, None) => Ok(spec.default.clone()),
    }
}

/// An object from sub-fields resolved against `payload`; `None` when none of them yields anything.
fn object(
    fields: &std::collections::BTreeMap<String, FieldSpec>,
    payload: &Value,
    ctx: &Context,
) -> Result<Option<Value>, String> {
    let mut built = serde_json::Map::new();
    // Constants and defaults alone do not make an object: money with a default currency but no
    // amount in the payload is no money at all.
    let mut found = false;
    for (name, spec) in fields {
        if let Some(value) = resolve(spec, payload, ctx).map_err(|e| format!("{name}: {e}"))? {
            found |= spec.value.is_none()
                && (spec.object.is_some()
                    || spec.paths.iter().any(|p| lookup(payload, p).is_some()));
            built.insert(name.clone(), value);
        }
    }
    Ok(found.then_some(Value::Object(built)))
}

fn apply(transform: &Transform, value: Value, ctx: &Context) -> Result<Option<Value>, String> {
    let text = || as_text(&value);
    let keep = |s: String| {
        if s.is_empty() {
            None
        } else {
            Some(Value::String(s))
        }
    };
    Ok(match transform {
        Transform::Named(Named::Trim) => keep(text().trim().to_owned()),
        Transform::Named(Named::Lowercase) => keep(text().to_lowercase()),
        Transform::Named(Named::Uppercase) => keep(text().to_uppercase()),
        Transform::Named(Named::ToString) => keep(text()),
        Transform::Named(Named::E164) => {
            let raw = text();
            // E.164 only where the record says where the number is (a country code, or its own
            // country): a national number that would be read in the default region, and one that
            // does not parse, are kept as given (the contract allows it), so dedupe reads them
            // itself and knows how sure that reading is.
            match phone::normalize(&raw, ctx.record_country, ctx.default_region) {
                Phone::Valid {
                    e164, certainty, ..
                } if certainty > Certainty::DefaultRegion => keep(e164),
                _ => keep(raw),
            }
        }
        Transform::Named(Named::FirstName) => {
            let full = text();
            let first = match full.trim().rsplit_once(' ') {
                Some((first, _)) => first.trim().to_owned(),
                None => full.trim().to_owned(),
            };
            keep(first)
        }
        Transform::Named(Named::LastName) => keep(
            text()
                .trim()
                .rsplit_once(' ')
                .map(|(_, last)| last.trim().to_owned())
                .unwrap_or_default(),
        ),
        Transform::Named(Named::DatetimeUtc) => Some(Value::String(datetime_utc(&text())?)),
        Transform::Named(Named::UnixSeconds) | Transform::Named(Named::UnixMillis) => {
            let n = value
                .as_i64()
                .or_else(|| text().trim().parse().ok())
                .ok_or_else(|| format!("{} is not a unix time", redact::value(&value)))?;
            let nanos = if matches!(transform, Transform::Named(Named::UnixMillis)) {
                i128::from(n) * 1_000_000
            } else {
                i128::from(n) * 1_000_000_000
            };
            let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| e.to_string())?;
            Some(Value::String(
                at.format(&Rfc3339).map_err(|e| e.to_string())?,
            ))
        }
        Transform::Named(Named::Bool) => match &value {
            Value::Bool(b) => Some(Value::Bool(*b)),
            other => match as_text(other).trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "y" => Some(Value::Bool(true)),
                "false" | "no" | "0" | "n" => Some(Value::Bool(false)),
                "" => None,
                _ => return Err(format!("{} is not a yes/no value", redact::value(other))),
            },
        },
        Transform::Map { map } => {
            let key = text();
            match map.get(&key) {
                Some(mapped) => keep(mapped.clone()),
                None => Some(value),
            }
        }
        Transform::Equals { equals } => Some(Value::Bool(&value == equals)),
        Transform::Named(Named::Date) => {
            let raw = text();
            let raw = raw.trim();
            let day = time::macros::format_description!("[year]-[month]-[day]");
            if time::Date::parse(raw, day).is_ok() {
                Some(Value::String(raw.to_owned()))
            } else {
                let utc = datetime_utc(raw)?;
                Some(Value::String(utc.chars().take(10).collect()))
            }
        }
        Transform::Set { set } => Some(set.clone()),
        Transform::Named(Named::MinorUnits) => Some(minor_units(&value, 2)?),
        Transform::MinorUnits { minor_units: scale } => Some(minor_units(&value, *scale)?),
        Transform::Named(Named::Integer) => match value.as_i64() {
            Some(n) => Some(Value::from(n)),
            None => {
                let raw = text();
                let n = decimal(raw.trim(), 0)
                    .map_err(|_| format!("{} is not a whole number", redact::value(&value)))?;
                Some(Value::from(n))
            }
        },
        Transform::Named(Named::XeroDate) => {
            // The offset after the milliseconds is informational: the milliseconds are UTC.
            let raw = text();
            let millis = raw
                .trim()
                .strip_prefix("/Date(")
                .and_then(|rest| rest.split(['+', '-', ')']).next())
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!(
                        "{} is not a Xero /Date(…)/",
                        redact::value(&Value::from(raw.as_str()))
                    )
                })?;
            return apply(
                &Transform::Named(Named::UnixMillis),
                Value::from(millis),
                ctx,
            );
        }
    })
}

/// A decimal amount (number or text, no float rounding) in minor units with `scale` decimals.
fn minor_units(value: &Value, scale: u32) -> Result<Value, String> {
    let raw = as_text(value);
    decimal(raw.trim(), scale)
        .map(Value::from)
        .map_err(|why| format!("{} is not an amount: {why}", redact::value(value)))
}

/// Parses `-12.5` with `scale` decimals into an integer (`-1250` for scale 2) exactly.
fn decimal(raw: &str, scale: u32) -> Result<i64, &'static str> {
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).map_err(|_| "scale too large")?;
    let fraction = fraction.trim_end_matches('0');
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err("not a decimal number");
    }
    if fraction.len() > scale {
        return Err("more decimals than the currency has");
    }
    let text = format!("{whole}{fraction:0<scale$}");
    let n: i64 = text.parse().map_err(|_| "out of range")?;
    Ok(if negative { -n } else { n })
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` (taken as UTC), or a `±HHMM` offset without colon, to UTC RFC 3339.
fn datetime_utc(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let parsed = OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        // 2015-10-05T14:42:19-0700 (no colon in the offset)
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
        );
        OffsetDateTime::parse(raw, fmt).ok()
    });
    let parsed = match parsed {
        Some(at) => at,
        None => {
            let fmt = time::macros::format_description!(
                "[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second]"
            );
            time::PrimitiveDateTime::parse(raw, fmt)
                .map(time::PrimitiveDateTime::assume_utc)
                .map_err(|_| format!("{} is not a date-time", redact::value(&Value::from(raw))))?
        }
    };
    parsed
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| e.to_string())
}
