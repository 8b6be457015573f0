//! Thin-event hydration: HubSpot, QuickBooks Online and Xero webhooks name a record instead of
//! carrying it, so transform reads the record from the vendor's API with the source's credentials
//! and maps `{"event": <the webhook element>, "record": <the record>}`. The record read is kept by
//! event id, so a redelivery or a replay from the DLQ maps the very record read the first time.

mod client;
mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use switchyard_chassis::Error;
use switchyard_chassis::config::{Config, SourceKind};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::RawEvent;

use client::Client;
use target::Target;

/// Prune kept records once every this many stores: cheap, and no background task to manage.
const PRUNE_EVERY: u64 = 1000;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HydrateError {
    /// 408, 429, 5xx, timeouts, connection errors, the database: worth another try, after at
    /// least `retry_after` when the vendor said so.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The request itself is wrong (401 after a refresh, 403, 404, other 4xx, no credentials):
    /// retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl HydrateError {
    fn transient(reason: String) -> Self {
        Self::Transient {
            reason,
            retry_after: None,
        }
    }
}

impl From<HydrateError> for crate::Refusal {
    fn from(error: HydrateError) -> Self {
        match error {
            HydrateError::Transient {
                reason,
                retry_after,
            } => Self::Retry(reason, retry_after),
            HydrateError::Permanent(reason) => Self::Permanent(reason),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    source: String,
    outcome: &'static str,
}

/// Reads thin events' records, one API client per source that has `sources[].api`.
#[derive(Debug, Clone)]
pub struct Hydration {
    clients: Arc<HashMap<String, Client>>,
    pool: Pool,
    outcomes: Family<Labels, Counter>,
    /// Kept records older than this are pruned: past it no dead letter can be replayed.
    keep_for: Duration,
    stores: Arc<AtomicU64>,
}

impl Hydration {
    /// One client per source with an `api` block; each starts from the newest refresh token kept
    /// in the database (rotated since the environment's was issued).
    pub async fn new(config: &Config, pool: Pool, registry: &mut Registry) -> Result<Self, Error> {
        let mut clients = HashMap::new();
        for source in &config.sources {
            let Some(api) = source.api.as_ref().filter(|_| source.kind.is_thin()) else {
                continue;
            };
            let client = Client::new(&source.name, source.kind, api, pool.clone())
                .await
                .map_err(|e| Error::Other(format!("sources: {}: api: {e}", source.name)))?;
            clients.insert(source.name.clone(), client);
        }
        let outcomes = Family::<Labels, Counter>::default();
        registry.register(
            "transform_hydrations",
            "Thin events' records read from the vendor's API, by source and outcome (fetched, stored = the kept record reused, transient, permanent)",
            outcomes.clone(),
        );
        Ok(Self {
            clients: Arc::new(clients),
            pool,
            outcomes,
            keep_for: config.nats.dlq_retention.max(config.nats.retention),
            stores: Arc::default(),
        })
    }

    /// The payload mappings see. Events of kinds that carry their record pass through unchanged.
    pub async fn hydrate(&self, raw: &RawEvent, event: Value) -> Result<Value, HydrateError> {
        let Some(kind) = thin_kind(&raw.source_kind) else {
            return Ok(event);
        };
        let result = self.record(raw, kind, &event).await;
        let outcome = match &result {
            Ok((_, outcome)) => *outcome,
            Err(HydrateError::Transient { .. }) => "transient",
            Err(HydrateError::Permanent(_)) => "permanent",
        };
        self.outcomes
            .get_or_create(&Labels {
                source: raw.source.clone(),
                outcome,
            })
            .inc();
        let (record, _) = result?;
        Ok(json!({ "event": event, "record": record }))
    }

    async fn record(
        &self,
        raw: &RawEvent,
        kind: SourceKind,
        event: &Value,
    ) -> Result<(Value, &'static str), HydrateError> {
        if let Some(record) = self.stored(&raw.event_id).await? {
            return Ok((record, "stored"));
        }
        let client = self.clients.get(&raw.source).ok_or_else(|| {
            HydrateError::Permanent(format!(
                "source {} sends thin events; configure sources[].api to hydrate them",
                raw.source
            ))
        })?;
        let target = Target::of(kind, &raw.event_type, event)?;
        let record = client.fetch(&target).await?;
        let record = self.keep(raw, record).await?;
        Ok((record, "fetched"))
    }

    /// The record kept for this event, if one was read before.
    async fn stored(&self, event_id: &str) -> Result<Option<Value>, HydrateError> {
        let db = self.pool.get().await.map_err(database)?;
        let row = db
            .query_opt(
                "SELECT record FROM hydrated_records WHERE event_id = $1",
                &[&event_id],
            )
            .await
            .map_err(database)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Keeps the record; when another replica kept one first, that one wins, so every copy of the
    /// event maps the same record.
    async fn keep(&self, raw: &RawEvent, record: Value) -> Result<Value, HydrateError> {
        let db = self.pool.get().await.map_err(database)?;
        let row = db
            .query_one(
                "INSERT INTO hydrated_records (event_id, source, event_type, record, fetched_at)
                 VALUES ($1, $2, $3, $4, now())
                 ON CONFLICT (event_id) DO UPDATE SET record = hydrated_records.record
                 RETURNING record",
                &[&raw.event_id, &raw.source, &raw.event_type, &record],
            )
            .await
            .map_err(database)?;
        if self
            .stores
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            let days = i32::try_from(self.keep_for.as_secs() / 86_400 + 1).unwrap_or(i32::MAX);
            if let Err(error) = db
                .execute(
                    "DELETE FROM hydrated_records WHERE fetched_at < now() - make_interval(days => $1)",
                    &[&days],
                )
                .await
            {
                tracing::warn!(%error, "pruning kept hydrated records failed");
            }
        }
        Ok(row.get(0))
    }
}

fn database(error: impl std::fmt::Display) -> HydrateError {
    HydrateError::transient(format!("hydrate: database unavailable: {error}"))
}

/// The kinds whose webhooks carry ids, not records.
fn thin_kind(kind: &str) -> Option<SourceKind> {
    [
        SourceKind::Hubspot,
        SourceKind::Quickbooks,
        SourceKind::Xero,
    ]
    .into_iter()
    .find(|k| k.as_str() == kind)
}

#[cfg(test)]
mod tests {
    //! The contact mappings of the thin vendors against records shaped as the vendors document
    //! them (HubSpot CRM v3 object, QuickBooks v3 Customer, Xero Accounting Contact).

    use serde_json::{Value, json};
    use switchyard_proto::contracts;

    use crate::mapping::{Context, Registry};

    fn map(kind: &str, event_type: &str, payload: &Value) -> (String, Option<String>, Value) {
        let contracts = contracts::built_in().expect("contracts");
        let registry = Registry::load(None, &contracts).expect("built-in mappings");
        let mapping = registry.find(kind, event_type).expect("a mapping");
        let ctx = Context::new(phonenumber::country::Id::US);
        let mut mapped = mapping.apply(payload, &ctx).expect("mapped");
        let contract = contracts
            .iter()
            .find(|c| c.id() == mapping.contract)
            .expect("contract");
        contract
            .apply(&mut mapped.record)
            .expect("meets the contract");
        (
            mapped.record_id,
            mapped.occurred_at,
            Value::Object(mapped.record),
        )
    }

    #[test]
    fn hydrated_hubspot_contacts_map_from_the_crm_object() {
        // GET /crm/v3/objects/contacts/{id} as HubSpot's CRM reference shows it.
        let record = json!({"id": "1246965", "properties": {"email": "BCooper@Biglytics.net", "firstname": "Bryan",
            "lastname": "Cooper", "phone": "(877) 929-0687", "company": "Biglytics", "jobtitle": "CTO",
            "lifecyclestage": "customer", "hs_lastmodifieddate": "2019-12-07T16:50:06.678Z"},
            "createdAt": "2019-10-30T03:30:17.883Z", "updatedAt": "2019-12-07T16:50:06.678Z", "archived": false});
        let event = json!({"objectId": 1246965, "eventType": "contact.propertyChange"});
        let (id, at, contact) = map(
            "hubspot",
            "contact.propertychange",
            &json!({"event": event, "record": record}),
        );
        assert_eq!(id, "1246965");
        assert_eq!(at.as_deref(), Some("2019-12-07T16:50:06.678Z"));
        // No country in the record: the national number is kept as written, for dedupe to read in
        // its default region (and know it guessed).
        assert_eq!(
            contact,
            json!({"email": "bcooper@biglytics.net", "first_name": "Bryan", "last_name": "Cooper",
                "phone": "(877) 929-0687", "company_name": "Biglytics", "job_title": "CTO", "lifecycle_stage": "customer"})
        );
    }

    #[test]
    fn hydrated_quickbooks_customers_map_from_the_customer_entity() {
        // The Customer of GET /v3/company/{realm}/customer/{id} in Intuit's API reference.
        let record = json!({"Id": "2", "GivenName": "Bill", "FamilyName": "Lucchini", "CompanyName": "Bill's Windsurf Shop",
            "PrimaryEmailAddr": {"Address": "Surf@Intuit.com"}, "PrimaryPhone": {"FreeFormNumber": "(415) 444-6538"},
            "BillAddr": {"City": "Half Moon Bay", "Country": "USA"},
            "MetaData": {"CreateTime": "2014-09-11T16:49:28-07:00", "LastUpdatedTime": "2014-09-18T12:56:01-07:00"}});
        let classic = json!({"realmId": "1185883450", "entity": {"name": "Customer", "id": "2", "operation": "Update"}});
        for (event_type, event) in [
            ("customer.update", classic),
            (
                "qbo.customer.merged.v1",
                json!({"type": "qbo.customer.merged.v1", "intuitentityid": "2"}),
            ),
        ] {
            let (id, at, contact) = map(
                "quickbooks",
                event_type,
                &json!({"event": event, "record": record}),
            );
            assert_eq!(id, "2");
            assert_eq!(at.as_deref(), Some("2014-09-18T19:56:01Z"));
            assert_eq!(
                contact,
                json!({"email": "surf@intuit.com", "first_name": "Bill", "last_name": "Lucchini",
                    "phone": "+14154446538", "company_name": "Bill's Windsurf Shop", "country": "US",
                    "lifecycle_stage": "customer"})
            );
        }
    }

    #[test]
    fn hydrated_xero_contacts_map_from_the_accounting_contact() {
        // Fields of the GET /Contacts/{ContactID} example in Xero's Accounting OpenAPI spec.
        let record = json!({"ContactID": "8138a266-fb42-49b2-a104-014b7045753d", "Name": "Acme Parts Co.",
            "FirstName": "Blake", "LastName": "Kohler", "EmailAddress": "bk@krave.co",
            "Phones": [{"PhoneType": "DDI", "PhoneNumber": "489-44493", "PhoneAreaCode": "345", "PhoneCountryCode": "4"}],
            "UpdatedDateUTC": "/Date(1551459777193+0000)/", "IsCustomer": true, "IsSupplier": true});
        let event = json!({"resourceId": "8138a266-fb42-49b2-a104-014b7045753d", "eventCategory": "CONTACT"});
        let (id, at, contact) = map(
            "xero",
            "contact.update",
            &json!({"event": event, "record": record}),
        );
        assert_eq!(id, "8138a266-fb42-49b2-a104-014b7045753d");
        assert_eq!(at.as_deref(), Some("2019-03-01T17:02:57.193Z"));
        assert_eq!(
            contact,
            json!({"email": "bk@krave.co", "first_name": "Blake", "last_name": "Kohler", "phone": "489-44493",
                "company_name": "Acme Parts Co.", "lifecycle_stage": "customer"})
        );
    }
}
