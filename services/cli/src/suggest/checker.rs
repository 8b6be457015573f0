//! The `Checker`: runs values through the real transforms and contract rules, and finds what this
//! build's mapping language can do.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use switchyard_proto::contracts::{Contract, ErrorHandling, FieldRule, FieldType};
use switchyard_transform::mapping::{Context, Mapping};

use super::DRY_RUN_REGION;

/// What the mapping language of this build can do beyond paths and the basic transforms; found
/// by trying it, so proposals use only what transform understands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features {
    /// `date`: a date-time to its UTC day.
    pub date: bool,
    /// `integer`: text holding a whole number to an integer.
    pub integer: bool,
    /// `xero_date`: `/Date(ms+0000)/` to RFC 3339.
    pub xero_date: bool,
    /// `object:` sub-fields with the `minor_units` transform: money from an amount and a currency.
    pub money: bool,
}

/// Evaluates values with the real transforms and contract rules.
#[derive(Debug)]
pub(crate) struct Checker {
    pub(super) ctx: Context,
    object: String,
    pub features: Features,
}

impl Checker {
    pub(crate) fn new(object: &str) -> Self {
        let mut checker = Self {
            ctx: Context::new(DRY_RUN_REGION),
            object: object.to_owned(),
            features: Features::default(),
        };
        let yields = |value: Value, transform: &str, expected: Value| {
            checker
                .transform(&value, &[transform])
                .is_ok_and(|out| out == Some(expected))
        };
        let features = Features {
            date: yields(
                json!("2026-01-02T23:30:00-02:00"),
                "date",
                json!("2026-01-03"),
            ),
            integer: yields(json!("42"), "integer", json!(42)),
            xero_date: checker
                .transform(&json!("/Date(1488391422280+0000)/"), &["xero_date"])
                .is_ok_and(|out| out.is_some_and(|v| v.is_string())),
            money: checker
                .resolve(
                    &json!({ "object": {
                        "minor_units": { "paths": ["a"], "transforms": ["minor_units"] },
                        "currency": { "paths": ["c"] },
                    }}),
                    &json!({ "a": "19.99", "c": "EUR" }),
                )
                .is_ok_and(|out| out == Some(json!({ "minor_units": 1999, "currency": "EUR" }))),
        };
        checker.features = features;
        checker
    }

    /// A field spec (as JSON) resolved against `payload`, as a mapping would do it.
    pub(super) fn resolve(&self, spec: &Value, payload: &Value) -> Result<Option<Value>, String> {
        let probe: Mapping = serde_json::from_value(json!({
            "name": "probe",
            "source_kind": "probe",
            "event_types": ["probe"],
            "contract": "probe/v1",
            "record_id": { "value": "probe" },
            "fields": { "v": spec },
        }))
        .map_err(|e| e.to_string())?;
        let (mut mapped, problems) = probe.apply_all(payload, &self.ctx);
        match problems.into_iter().next() {
            Some(problem) => Err(problem.replace("probe.v: ", "")),
            None => Ok(mapped.record.remove("v")),
        }
    }

    /// `value` through `transforms`.
    fn transform(&self, value: &Value, transforms: &[&str]) -> Result<Option<Value>, String> {
        self.resolve(
            &json!({ "paths": ["v"], "transforms": transforms }),
            &json!({ "v": value }),
        )
        // Without the value: the proposal may be committed, and samples hold personal data.
        .map_err(|problem| problem.replace(&value.to_string(), "the value"))
    }

    /// Whether `value` satisfies `rule` (as field `name` of the object).
    pub(super) fn satisfies(
        &self,
        name: &str,
        rule: &FieldRule,
        value: Value,
    ) -> Result<(), String> {
        let contract = Contract {
            object: self.object.clone(),
            version: 1,
            purpose: String::new(),
            system_of_record: String::new(),
            owner: String::new(),
            change_approval: String::new(),
            unique_key: Vec::new(),
            matching: String::new(),
            fields: BTreeMap::from([(
                name.to_owned(),
                FieldRule {
                    required: false,
                    default: None,
                    ..rule.clone()
                },
            )]),
            write_rules: BTreeMap::new(),
            error_handling: ErrorHandling {
                on_violation: "dead_letter".to_owned(),
                notes: None,
            },
            samples: Vec::new(),
        };
        let shown = value.to_string();
        let mut object = Map::from_iter([(name.to_owned(), value)]);
        contract.apply(&mut object).map_err(|problems| {
            // Without the value: the proposal may be committed, and samples hold personal data.
            problems
                .join("; ")
                .replace(&format!("{}.{name}: ", self.object), "")
                .replace(&shown, "the value")
        })
    }

    /// The value through the transforms, then the field's rule: `Err` says what breaks.
    pub(super) fn dry_run(
        &self,
        name: &str,
        rule: &FieldRule,
        value: &Value,
        transforms: &[&str],
    ) -> Result<(), String> {
        match self.transform(value, transforms) {
            Ok(Some(out)) => self
                .satisfies(name, rule, out)
                .map_err(|problem| format!("the contract says: {problem}")),
            Ok(None) => Ok(()),
            Err(problem) => Err(format!("the transforms fail: {problem}")),
        }
    }

    pub(super) fn is_country(&self, s: &str) -> bool {
        let s = s.trim();
        s.len() == 2
            && s.chars().all(|c| c.is_ascii_alphabetic())
            && self
                .satisfies(
                    "c",
                    &rule(FieldType::Country),
                    json!(s.to_ascii_uppercase()),
                )
                .is_ok()
    }

    pub(super) fn is_currency(&self, s: &str) -> bool {
        let s = s.trim();
        s.len() == 3
            && s.chars().all(|c| c.is_ascii_alphabetic())
            && self
                .satisfies(
                    "c",
                    &rule(FieldType::Money),
                    json!({ "minor_units": 0, "currency": s.to_ascii_uppercase() }),
                )
                .is_ok()
    }

    /// Whether `datetime_utc` reads the text.
    pub(super) fn is_datetime(&self, s: &str) -> bool {
        !s.trim().is_empty()
            && self
                .transform(&json!(s), &["datetime_utc"])
                .is_ok_and(|v| v.is_some())
    }
}

pub(super) fn rule(kind: FieldType) -> FieldRule {
    FieldRule {
        kind,
        required: false,
        values: Vec::new(),
        max_length: None,
        min: None,
        max: None,
        default: None,
        description: None,
    }
}
