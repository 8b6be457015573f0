//! The flow map file: its types, parsing, and validation with errors that name the line and field.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::locate::locate;

/// A whole flow map: the systems a business runs and the hand-made flows between them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowMap {
    /// Whose map this is; only shown in the report heading.
    #[serde(default)]
    pub business: Option<String>,
    #[serde(default)]
    pub assumptions: Assumptions,
    pub systems: Vec<System>,
    #[serde(default)]
    pub flows: Vec<Flow>,
    /// Answers to the consolidation questions that the systems and flows cannot give.
    #[serde(default)]
    pub consolidation: Vec<ConsolidationFacts>,
}

/// Weeks in an average calendar month: 52 weeks over 12 months.
pub const WEEKS_PER_CALENDAR_MONTH: f64 = 52.0 / 12.0;

/// Numbers the estimates rest on; each can also be overridden on the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Assumptions {
    /// Loaded cost of one hour of the people who re-key records today.
    pub hourly_rate: f64,
    /// Cost of one hour of setting a flow up (defaults to `hourly_rate`).
    pub setup_hourly_rate: Option<f64>,
    /// How many weeks of re-keying count as one month: a calendar month, 52 ÷ 12 ≈ 4.333, unless
    /// set (1 reproduces "one week's re-keying" figures; see docs/audit.md).
    pub weeks_per_month: f64,
    pub weights: Weights,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            hourly_rate: 35.0,
            setup_hourly_rate: None,
            weeks_per_month: WEEKS_PER_CALENDAR_MONTH,
            weights: Weights::default(),
        }
    }
}

/// Scorecard weights in percent; they must add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub time_saved: f64,
    pub error_reduction: f64,
    pub revenue_impact: f64,
    pub risk_reduction: f64,
    pub user_experience: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            time_saved: 30.0,
            error_reduction: 20.0,
            revenue_impact: 25.0,
            risk_reduction: 15.0,
            user_experience: 10.0,
        }
    }
}

impl Weights {
    /// The criterion names accepted in the map and by `--weight NAME=PERCENT`.
    pub const NAMES: [&'static str; 5] = [
        "time_saved",
        "error_reduction",
        "revenue_impact",
        "risk_reduction",
        "user_experience",
    ];

    pub fn as_array(&self) -> [f64; 5] {
        [
            self.time_saved,
            self.error_reduction,
            self.revenue_impact,
            self.risk_reduction,
            self.user_experience,
        ]
    }

    /// Sets one weight by its criterion name.
    pub fn set(&mut self, name: &str, percent: f64) -> Result<(), String> {
        let slot = match name {
            "time_saved" => &mut self.time_saved,
            "error_reduction" => &mut self.error_reduction,
            "revenue_impact" => &mut self.revenue_impact,
            "risk_reduction" => &mut self.risk_reduction,
            "user_experience" => &mut self.user_experience,
            other => {
                return Err(format!(
                    "unknown criterion {other:?}; use one of {}",
                    Self::NAMES.join(", ")
                ));
            }
        };
        *slot = percent;
        Ok(())
    }

    /// Why these weights cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let values = self.as_array();
        if values.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Some("every weight must be a number of 0 or more".to_owned());
        }
        let sum: f64 = values.iter().sum();
        ((sum - 100.0).abs() > 0.01)
            .then(|| format!("the weights add up to {sum}, they must add up to 100"))
    }
}

/// A business system with its licence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub name: String,
    /// The product (hubspot, pipedrive, quickbooks…); decides which connector applies.
    pub kind: String,
    pub category: Category,
    /// Monthly licence cost in the report's currency.
    pub licence_per_month: f64,
}

/// What job a system does; two systems in one category (other than `other`) overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    #[serde(alias = "CRM")]
    Crm,
    #[serde(alias = "Marketing")]
    Marketing,
    #[serde(alias = "Accounting")]
    Accounting,
    #[serde(alias = "ERP")]
    Erp,
    #[serde(alias = "E-commerce", alias = "ecommerce")]
    ECommerce,
    #[serde(alias = "Other")]
    Other,
}

impl Category {
    pub fn label(self) -> &'static str {
        match self {
            Self::Crm => "CRM",
            Self::Marketing => "marketing",
            Self::Accounting => "accounting",
            Self::Erp => "ERP",
            Self::ECommerce => "e-commerce",
            Self::Other => "other",
        }
    }
}

/// The canonical objects Switchyard has contracts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Lead,
    Contact,
    Company,
    Product,
    Deal,
    Order,
    Invoice,
}

impl Object {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Contact => "contact",
            Self::Company => "company",
            Self::Product => "product",
            Self::Deal => "deal",
            Self::Order => "order",
            Self::Invoice => "invoice",
        }
    }
}

/// Whether records travel one way or both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    OneWay,
    TwoWay,
}

/// How soon the other system needs the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    #[serde(alias = "realtime")]
    RealTime,
    Hourly,
    Daily,
}

/// A flow done by hand today: someone re-keys records from one system into another.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Defaults to `<from>-to-<to>`.
    #[serde(default)]
    pub name: Option<String>,
    pub from: String,
    pub to: String,
    pub objects: Vec<Object>,
    pub direction: Direction,
    pub frequency: Frequency,
    pub volume_per_week: f64,
    pub minutes_per_record: f64,
    /// Share of records re-keyed wrongly today, in percent; leave out when unknown.
    #[serde(default)]
    pub error_rate_percent: Option<f64>,
    /// Who answers for this flow today; leave out when nobody does.
    #[serde(default)]
    pub owner: Option<String>,
    /// A known setup cost; otherwise it is estimated (see docs/audit.md).
    #[serde(default)]
    pub setup_cost: Option<f64>,
}

impl Flow {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-to-{}", self.from, self.to))
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
    }
}

/// What the owner knows about two overlapping systems that the map cannot show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsolidationFacts {
    pub systems: Vec<String>,
    #[serde(default)]
    pub same_job_percent: Option<f64>,
    #[serde(default)]
    pub migration_cost: Option<f64>,
    #[serde(default)]
    pub retraining_cost: Option<f64>,
    #[serde(default)]
    pub can_maintain_integrations: Option<bool>,
}

/// A flow map that could not be used, with every problem found.
#[derive(Debug)]
pub struct MapError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// One problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field path, such as `flows[2].volume_per_week`; empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow map {} is not valid:", self.file)?;
        for p in &self.problems {
            write!(f, "\n  {}", p.file_line(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for MapError {}

impl Problem {
    fn file_line(&self, file: &str) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{file}: line {l}, column {c}: "),
            _ => format!("{file}: "),
        };
        if self.field.is_empty() {
            format!("{at}{}", self.message)
        } else {
            format!("{at}{}: {}", self.field, self.message)
        }
    }
}

impl FlowMap {
    /// Parses and validates a flow map; `file` only names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, MapError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let map: FlowMap = serde_path_to_error::deserialize(de).map_err(|e| MapError {
            file: file.to_owned(),
            problems: vec![parse_problem(&e)],
        })?;
        let problems: Vec<Problem> = map
            .problems()
            .into_iter()
            .map(|(field, message)| {
                let location = locate(text, &field);
                Problem {
                    line: location.map(|l| l.0),
                    column: location.map(|l| l.1),
                    field,
                    message,
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(MapError {
                file: file.to_owned(),
                problems,
            })
        }
    }

    /// The system with this name.
    pub fn system(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }
}

/// Turns a parse error into a problem with serde_yaml_ng's position and the field path.
fn parse_problem(e: &serde_path_to_error::Error<serde_yaml_ng::Error>) -> Problem {
    let inner = e.inner();
    let location = inner.location();
    let mut message = inner.to_string();
    // serde_yaml_ng writes "<path>: <message> at line L column C"; the path and position are
    // reported in their own fields, so the message keeps only what went wrong.
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    let path = e.path().to_string();
    let field = if path == "." { String::new() } else { path };
    if !field.is_empty()
        && let Some(rest) = message.strip_prefix(&format!("{field}: "))
    {
        message = rest.to_owned();
    }
    Problem {
        line: location.as_ref().map(serde_yaml_ng::Location::line),
        column: location.as_ref().map(serde_yaml_ng::Location::column),
        field,
        message,
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
