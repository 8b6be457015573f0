//! Machine-readable data contracts (`proto/contracts/<object>.v<N>.yaml`): purpose, owner,
//! fields with their rules, matching, write rules, error handling, samples. Transform validates
//! every canonical object against its contract; `switchyard contracts check` validates the files
//! and runs their samples.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::redact;

/// The contracts that ship with Switchyard, by file name.
pub const BUILT_IN: [(&str, &str); 7] = [
    (
        "contact.v1.yaml",
        include_str!("../contracts/contact.v1.yaml"),
    ),
    ("lead.v1.yaml", include_str!("../contracts/lead.v1.yaml")),
    (
        "company.v1.yaml",
        include_str!("../contracts/company.v1.yaml"),
    ),
    (
        "product.v1.yaml",
        include_str!("../contracts/product.v1.yaml"),
    ),
    ("deal.v1.yaml", include_str!("../contracts/deal.v1.yaml")),
    ("order.v1.yaml", include_str!("../contracts/order.v1.yaml")),
    (
        "invoice.v1.yaml",
        include_str!("../contracts/invoice.v1.yaml"),
    ),
];

/// A contract file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ContractError {
    pub file: String,
    pub reason: String,
}

/// One object's contract at one version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub object: String,
    pub version: u32,
    pub purpose: String,
    pub system_of_record: String,
    pub owner: String,
    pub change_approval: String,
    pub unique_key: Vec<String>,
    pub matching: String,
    pub fields: BTreeMap<String, FieldRule>,
    /// Field → the system categories allowed to write it.
    #[serde(default)]
    pub write_rules: BTreeMap<String, Vec<String>>,
    pub error_handling: ErrorHandling,
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// The rules of one field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Allowed values of an `enum` field (this version's list).
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// Taken when the field is missing.
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Field formats a contract can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Email,
    /// E.164 (`+` and 7–15 digits), after normalisation.
    Phone,
    Enum,
    Bool,
    Integer,
    /// `{minor_units, currency}`: non-negative minor units, ISO 4217 currency.
    Money,
    /// ISO 3166-1 alpha-2.
    Country,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    List,
}

/// What happens when a payload breaks the contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorHandling {
    /// Always `dead_letter` today: a violating payload is never dropped, never half-mapped.
    pub on_violation: String,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A sample payload with the verdict the contract must reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub name: String,
    pub valid: bool,
    pub payload: Value,
    /// Starts of the expected problem messages, for invalid samples.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl Contract {
    /// Parses one contract file and checks that it is coherent.
    pub fn parse(file: &str, text: &str) -> Result<Self, ContractError> {
        let fail = |reason: String| ContractError {
            file: file.to_owned(),
            reason,
        };
        let contract: Contract = serde_yaml_ng::from_str(text).map_err(|e| fail(e.to_string()))?;
        let expected = format!("{}.v{}.yaml", contract.object, contract.version);
        if !file.ends_with(&expected) {
            return Err(fail(format!("the file name should be {expected}")));
        }
        for (name, rule) in &contract.fields {
            if rule.kind == FieldType::Enum && rule.values.is_empty() {
                return Err(fail(format!("fields.{name}: an enum needs its values")));
            }
        }
        for key in &contract.unique_key {
            if key != "source id" && !contract.fields.contains_key(key) {
                return Err(fail(format!("unique_key: {key} is not a field")));
            }
        }
        for field in contract.write_rules.keys() {
            if !contract.fields.contains_key(field) {
                return Err(fail(format!("write_rules: {field} is not a field")));
            }
        }
        if contract.error_handling.on_violation != "dead_letter" {
            return Err(fail(
                "error_handling.on_violation: only dead_letter is supported".to_owned(),
            ));
        }
        Ok(contract)
    }

    /// `contact/v1`.
    pub fn id(&self) -> String {
        format!("{}/v{}", self.object, self.version)
    }

    /// Fills defaults into `object`, then lists every rule it breaks, one message per field, e.g.
    /// `contact.email: "bob@" is not an email`.
    pub fn apply(&self, object: &mut serde_json::Map<String, Value>) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (name, rule) in &self.fields {
            let present = object.get(name).is_some_and(|v| !v.is_null() && v != "");
            if !present {
                if let Some(default) = &rule.default {
                    object.insert(name.clone(), default.clone());
                } else if rule.required {
                    problems.push(format!("{}.{name}: required", self.object));
                }
                continue;
            }
            if let Some(value) = object.get(name) {
                check(
                    &format!("{}.{name}", self.object),
                    rule,
                    value,
                    &mut problems,
                );
            }
        }
        for name in object.keys() {
            if !self.fields.contains_key(name) {
                problems.push(format!(
                    "{}.{name}: not a field of {}",
                    self.object,
                    self.id()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Runs the contract's own samples; each failure says which sample and why.
    pub fn check_samples(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for sample in &self.samples {
            let Some(mut object) = sample.payload.as_object().cloned() else {
                failures.push(format!(
                    "{}: sample {:?}: the payload is not an object",
                    self.id(),
                    sample.name
                ));
                continue;
            };
            match (self.apply(&mut object), sample.valid) {
                (Ok(()), true) => {}
                (Err(problems), true) => failures.push(format!(
                    "{}: sample {:?} should be valid but: {}",
                    self.id(),
                    sample.name,
                    problems.join("; ")
                )),
                (Ok(()), false) => failures.push(format!(
                    "{}: sample {:?} should be invalid but passed",
                    self.id(),
                    sample.name
                )),
                (Err(problems), false) => {
                    for expected in &sample.errors {
                        if !problems.iter().any(|p| p.starts_with(expected.as_str())) {
                            failures.push(format!(
                                "{}: sample {:?} should report {expected:?}, got: {}",
                                self.id(),
                                sample.name,
                                problems.join("; ")
                            ));
                        }
                    }
                }
            }
        }
        failures
    }
}

fn check(path: &str, rule: &FieldRule, value: &Value, problems: &mut Vec<String>) {
    let text = value.as_str();
    // Reasons reach read-only users (dead letters, admin API, dashboard): codes are shown, personal
    // data never is (crate::redact).
    let shown = || redact::value(value);
    match rule.kind {
        FieldType::String => match text {
            Some(s) if rule.max_length.is_some_and(|max| s.chars().count() > max) => {
                problems.push(format!(
                    "{path}: longer than {} characters",
                    rule.max_length.unwrap_or(0)
                ));
            }
            Some(_) => {}
            None => problems.push(format!("{path}: {} is not a string", shown())),
        },
        FieldType::Email => {
            if !text.is_some_and(is_email) {
                let shown = text.map_or_else(shown, |s| format!("{:?}", redact::email(s)));
                problems.push(format!("{path}: {shown} is not an email"));
            }
        }
        FieldType::Phone => {
            let ok = text.is_some_and(|s| {
                s.strip_prefix('+').is_some_and(|d| {
                    (7..=15).contains(&d.len())
                        && d.bytes().all(|b| b.is_ascii_digit())
                        && !d.starts_with('0')
                })
            });
            if !ok {
                let shown = text.map_or_else(shown, |s| format!("{:?}", redact::phone(s)));
                problems.push(format!("{path}: {shown} is not an E.164 phone number"));
            }
        }
        FieldType::Enum => {
            if !text.is_some_and(|s| rule.values.iter().any(|v| v == s)) {
                problems.push(format!(
                    "{path}: {} is not one of {}",
                    shown(),
                    rule.values.join(", ")
                ));
            }
        }
        FieldType::Bool => {
            if !value.is_boolean() {
                problems.push(format!("{path}: {} is not true or false", shown()));
            }
        }
        FieldType::Integer => match value.as_i64() {
            Some(n)
                if rule.min.is_some_and(|min| n < min) || rule.max.is_some_and(|max| n > max) =>
            {
                problems.push(format!("{path}: {n} is out of range"));
            }
            Some(_) => {}
            None => problems.push(format!("{path}: {} is not an integer", shown())),
        },
        FieldType::Money => match value.as_object() {
            Some(money) => {
                match money.get("minor_units").and_then(Value::as_i64) {
                    Some(n) if n < 0 => {
                        problems.push(format!("{path}.minor_units: {n} is negative"))
                    }
                    Some(_) => {}
                    None => problems.push(format!(
                        "{path}.minor_units: required, in minor units (cents)"
                    )),
                }
                let currency = money
                    .get("currency")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if iso_currency::Currency::from_code(currency).is_none() {
                    problems.push(format!(
                        "{path}.currency: {} is not an ISO 4217 currency",
                        redact::value(&Value::from(currency))
                    ));
                }
            }
            None => problems.push(format!(
                "{path}: {} is not money ({{minor_units, currency}})",
                shown()
            )),
        },
        FieldType::Country => {
            if text.is_none_or(|s| isocountry::CountryCode::for_alpha2(s).is_err()) {
                problems.push(format!(
                    "{path}: {} is not an ISO 3166-1 alpha-2 country",
                    shown()
                ));
            }
        }
        FieldType::Date => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            if text.is_none_or(|s| time::Date::parse(s, format).is_err()) {
                problems.push(format!("{path}: {} is not a date (YYYY-MM-DD)", shown()));
            }
        }
        FieldType::Datetime => {
            let rfc3339 = &time::format_description::well_known::Rfc3339;
            if text.is_none_or(|s| time::OffsetDateTime::parse(s, rfc3339).is_err()) {
                problems.push(format!("{path}: {} is not an RFC 3339 date-time", shown()));
            }
        }
        FieldType::List => {
            if !value.is_array() {
                problems.push(format!("{path}: {} is not a list", shown()));
            }
        }
    }
}

/// A pragmatic check: one `@`, something before it, a dotted domain after it, no spaces.
pub fn is_email(email: &str) -> bool {
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

/// The built-in contracts, parsed; a broken built-in file is a bug caught by the tests.
pub fn built_in() -> Result<Vec<Contract>, ContractError> {
    BUILT_IN
        .iter()
        .map(|(file, text)| Contract::parse(file, text))
        .collect()
}

/// Loads the built-in contracts plus every `*.yaml` in `dir` (a user's own contracts and new
/// versions; a file with the same object and version replaces the built-in one).
pub fn load(dir: Option<&std::path::Path>) -> Result<Vec<Contract>, ContractError> {
    let mut contracts = built_in()?;
    if let Some(dir) = dir {
        for (file, text) in
            yaml_files(dir).map_err(|(file, reason)| ContractError { file, reason })?
        {
            let contract = Contract::parse(&file, &text)?;
            contracts.retain(|c| c.id() != contract.id());
            contracts.push(contract);
        }
    }
    Ok(contracts)
}

/// Every `*.yaml` / `*.yml` file in `dir`, in name order, with its text; errors name the file.
/// Shared by the contract and mapping loaders (users drop their own files in a directory).
pub fn yaml_files(dir: &std::path::Path) -> Result<Vec<(String, String)>, (String, String)> {
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.display().to_string(), e.to_string()))?;
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            std::fs::read_to_string(&path)
                .map(|text| (file.clone(), text))
                .map_err(|e| (file, e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_contract_parses_and_passes_its_samples() {
        let contracts = built_in().expect("built-in contracts parse");
        assert_eq!(contracts.len(), 7);
        for contract in &contracts {
            assert!(
                contract.samples.len() >= 2,
                "{} needs samples",
                contract.id()
            );
            assert_eq!(
                contract.check_samples(),
                Vec::<String>::new(),
                "{}",
                contract.id()
            );
        }
    }

    #[test]
    fn violations_name_the_field_and_the_rule_with_personal_values_redacted() {
        let contract = built_in()
            .expect("contracts")
            .into_iter()
            .find(|c| c.object == "contact")
            .expect("contact");
        let mut object = serde_json::json!({"email": "bob@", "country": "UK", "surprise": 1})
            .as_object()
            .cloned()
            .expect("object");
        let problems = contract.apply(&mut object).expect_err("violations");
        assert!(
            problems.contains(&"contact.email: \"b***@\" is not an email".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("contact.country: \"UK\"")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("contact.surprise: not a field")),
            "{problems:?}"
        );
        assert_eq!(
            object["lifecycle_stage"], "lead",
            "the default is filled in"
        );
    }

    #[test]
    fn incoherent_files_are_refused() {
        let (_, text) = BUILT_IN[0];
        assert!(
            Contract::parse("contact.v2.yaml", text).is_err(),
            "file name must match the version"
        );
        let broken = text.replace("unique_key: [email, phone]", "unique_key: [email, fax]");
        let err = Contract::parse("contact.v1.yaml", &broken).expect_err("bad key");
        assert!(err.to_string().contains("unique_key: fax"), "{err}");
    }
}
