//! Flows: which golden-record changes go to which destination.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Canonical object types a flow can be triggered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Lead,
    Contact,
    Company,
    Product,
    Deal,
    Order,
    Invoice,
}

impl ObjectType {
    /// The name used in subjects, contracts and metrics.
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

    /// The object's canonical fields, as its newest built-in contract names them: what a flow's
    /// `fields` may list.
    pub fn fields(self) -> &'static [String] {
        static FIELDS: std::sync::OnceLock<BTreeMap<&'static str, Vec<String>>> =
            std::sync::OnceLock::new();
        let all = FIELDS.get_or_init(|| {
            let mut newest: BTreeMap<&'static str, (u32, Vec<String>)> = BTreeMap::new();
            for contract in switchyard_proto::contracts::built_in().unwrap_or_default() {
                let Some(object) = OBJECTS.iter().find(|o| o.as_str() == contract.object) else {
                    continue;
                };
                let entry = newest.entry(object.as_str()).or_default();
                if contract.version >= entry.0 {
                    *entry = (contract.version, contract.fields.into_keys().collect());
                }
            }
            newest.into_iter().map(|(k, (_, f))| (k, f)).collect()
        });
        all.get(self.as_str()).map_or(&[], Vec::as_slice)
    }
}

/// Every object type.
const OBJECTS: [ObjectType; 7] = [
    ObjectType::Lead,
    ObjectType::Contact,
    ObjectType::Company,
    ObjectType::Product,
    ObjectType::Deal,
    ObjectType::Order,
    ObjectType::Invoice,
];

/// Which golden-record changes trigger a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Created,
    Updated,
}

/// "When this kind of golden-record change happens, do this in that destination."
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub name: String,
    pub object: ObjectType,
    #[serde(default = "default_triggers")]
    pub on: Vec<Trigger>,
    pub destination: String,
    /// Attempts before a change is dead-lettered.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay before each retry; the last entry repeats. Jitter is added.
    #[serde(with = "humantime_serde::option", default)]
    pub retry_base: Option<Duration>,
    #[serde(with = "humantime_serde::option", default)]
    pub retry_max: Option<Duration>,
    /// Only changes whose golden record has these values go through, e.g.
    /// `{ lifecycle_stage: lead, marketing_consent: true }`; others are skipped (and counted).
    #[serde(default)]
    pub when: BTreeMap<String, serde_json::Value>,
    /// Minutes of manual re-keying one delivered record saves (from `switchyard audit`), so
    /// monitor can report realised value.
    #[serde(default, alias = "minutes_saved_per_event")]
    pub minutes_per_record: Option<f64>,
    /// Loaded hourly cost of that manual work, for the same report.
    #[serde(default)]
    pub hourly_cost: Option<f64>,
    /// Monitor alerts when the flow's last delivery is older than this (`30m`).
    #[serde(with = "humantime_serde::option", default)]
    pub freshness_sla: Option<Duration>,
    /// Data minimisation: when given, only these canonical fields (contract names, e.g. `email`,
    /// `first_name`, `country`) reach the destination; every other field is left out of the body.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Klaviyo: the list profiles with marketing consent are subscribed to; for invoices, the
    /// (post-sale nurture) list the paying customer's profile is added to.
    #[serde(default)]
    pub list_id: Option<String>,
    /// HubSpot, invoices: the deal stage the invoice's deal is moved to (default `closedwon`).
    #[serde(default)]
    pub deal_stage: Option<String>,
    /// Mailchimp, invoices: the tag the paying customer's audience member gets (e.g.
    /// `customer-paid`), for a post-sale nurture journey that starts on it.
    #[serde(default)]
    pub tag: Option<String>,
    /// A change older than this (since ingest received its cause) is dead-lettered instead of
    /// tried again: it bounds how long any change can keep retrying.
    #[serde(with = "humantime_serde", default = "default_max_age")]
    pub max_age: Duration,
}

pub(super) fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

pub(super) fn default_triggers() -> Vec<Trigger> {
    vec![Trigger::Created, Trigger::Updated]
}

pub(super) fn default_attempts() -> u32 {
    8
}
