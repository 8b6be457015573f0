//! Golden contacts in PostgreSQL: match, merge with survivorship, suppress no-ops, and record the
//! outcome per source event in the same transaction as the change (outbox). Contacts are resolved
//! a batch at a time ([`resolve_contacts`], in `batch`); what lives here is shared with the other
//! objects (`records`) and the operator commands (`merge`).

use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use switchyard_proto::v1::{Consent, Contact, ExternalRef};
use time::OffsetDateTime;
use uuid::Uuid;

mod batch;
#[cfg(test)]
mod phone_tests;
#[cfg(test)]
mod seeded_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use batch::resolve_contacts;

/// Database failures; all transient from the pipeline's point of view (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] switchyard_chassis::deadpool_postgres::PoolError),
    /// A key led to a golden contact that is not there (a crosswalk row without its record).
    #[error("golden contact {0} is referenced but missing")]
    Missing(Uuid),
}

impl StoreError {
    /// Whether the database refused a statement (a constraint, a deadlock, a missing row) rather
    /// than being out of reach: such a failure may be one event's doing, so the events of a failed
    /// batch are worth trying again one by one; an unreachable database fails them all anyway.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Db(error) => error.code().is_some(),
            Self::Missing(_) => true,
            Self::Pool(_) => false,
        }
    }
}

/// What resolving one canonical contact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// Nothing changed: no golden change is emitted (this is what stops echo loops).
    NoOp,
    /// Older than what is stored: never overwrites newer values.
    Stale,
    /// Keys point at different golden records: recorded, not merged.
    Conflict,
    /// This source event was processed before.
    Duplicate,
}

impl Outcome {
    /// Label for metrics and the `processed_events` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::NoOp => "noop",
            Self::Stale => "stale",
            Self::Conflict => "conflict",
            Self::Duplicate => "duplicate",
        }
    }
}

/// A golden change waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Pending {
    pub event_id: String,
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// What resolving one event did ([`resolve_contacts`], and the other objects' `records::resolve`).
#[derive(Debug)]
pub struct Resolution {
    pub outcome: Outcome,
    /// The change to publish (also for a duplicate whose change was never published).
    pub pending: Option<Pending>,
    /// Review notices the event raised besides (`review_notices`): every one again for a
    /// duplicate, since they carry no published mark (JetStream drops the repeats).
    pub notices: Vec<Pending>,
}

/// What [`resolve_contacts`] needs besides the records: where its outcomes go and how phones read.
#[derive(Debug, Clone)]
pub struct ContactRules {
    /// `<prefix>.golden.contact`.
    pub golden_subject: String,
    /// `<prefix>.ops.conflict.contact`.
    pub conflict_subject: String,
    /// Region assumed for phone numbers written without a country code.
    pub default_region: phonenumber::country::Id,
    /// Which kind of system owns which field (the contracts' write rules).
    pub write_rules: crate::survivorship::WriteRules,
}

/// The stored golden contact.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Golden {
    pub(crate) id: Uuid,
    pub(crate) contact: Contact,
    /// The E.164 match key of `contact.phone`; `None` when the phone is missing or unparseable.
    pub(crate) phone_key: Option<String>,
    /// How sure the reading of the keyed phone is ([`certainty_rank`]); `None` without a key.
    pub(crate) phone_certainty: Option<i16>,
    pub(crate) source_updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// A phone reading's certainty as stored (`golden_contacts.phone_certainty`): 1 when the record
/// said where the number is (its country code, or the record's own country; transform writes
/// the latter as E.164 already, so the two cannot be told apart here), 0 when it was read in the
/// default region, a guess.
pub(crate) fn certainty_rank(certainty: crate::normalize::Certainty) -> i16 {
    use crate::normalize::Certainty;
    match certainty {
        Certainty::DefaultRegion => 0,
        Certainty::RecordCountry | Certainty::International => 1,
    }
}

/// Whether an incoming phone (its key and certainty) may replace the stored one: a valid phone
/// is never replaced by an unparseable or missing one, nor by a less certain reading.
pub(crate) fn phone_may_replace(
    stored: &Golden,
    incoming_key: Option<&str>,
    incoming_certainty: Option<i16>,
) -> bool {
    match (&stored.phone_key, incoming_key) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(_)) => {
            incoming_certainty.unwrap_or(0) >= stored.phone_certainty.unwrap_or(0)
        }
    }
}

/// Which keys of the incoming record matched which record, without the personal data itself.
fn conflict_detail(matches: &[(&'static str, Uuid)], a: Uuid, b: Uuid) -> String {
    let keys = |id: Uuid| {
        matches
            .iter()
            .filter(|(_, matched)| *matched == id)
            .map(|(key, _)| *key)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    format!(
        "{} matched golden_a, {} matched golden_b; not merged",
        keys(a),
        keys(b)
    )
}

/// Parameters of a statement.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

// Statements are prepared once per pooled connection (deadpool's statement cache): a bare SQL
// string would cost a parse round trip on every call, and dedupe's throughput is round trips.

/// Executes `sql`, prepared once per connection.
pub(crate) async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

/// At most one row of `sql`, prepared once per connection.
pub(crate) async fn query_opt_cached(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&statement, params).await?)
}

/// Exactly one row of `sql`, prepared once per connection.
pub(crate) async fn query_one_cached(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<tokio_postgres::Row, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_one(&statement, params).await?)
}

/// The rows of `sql`, prepared once per connection.
pub(crate) async fn query_cached(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

/// Adds a destination's id for a golden record to the crosswalk; false when that external id
/// was linked already (to this record or, kept as it is, another).
pub async fn link(
    pool: &Pool,
    link: &switchyard_proto::v1::CrosswalkLink,
    golden_id: Uuid,
) -> Result<bool, StoreError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "INSERT INTO crosswalk (system, object, external_id, golden_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let inserted = client
        .execute(
            &statement,
            &[&link.system, &link.object, &link.external_id, &golden_id],
        )
        .await?;
    Ok(inserted == 1)
}

/// Takes transaction-scoped advisory locks on `keys` (sorted by the caller), in their order, in
/// one round trip: `WITH ORDINALITY` keeps the array's order.
pub(crate) async fn lock_keys(tx: &Transaction<'_>, keys: &[String]) -> Result<(), StoreError> {
    exec(tx, LOCK_KEYS, &[&keys]).await?;
    Ok(())
}

/// Locks the sorted text keys of `$1` in their order (`WITH ORDINALITY` keeps the array's order).
const LOCK_KEYS: &str = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) \
     FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n";

/// How long a batch of published marks may fill once it holds one.
const MARK_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Marks outbox entries published in batches, off the message path. The flag only spares an
/// event that is delivered again a second publish — which JetStream's duplicate window and
/// deliver's change-id check absorb anyway — so the acknowledgement need not wait for it.
#[derive(Debug, Clone)]
pub struct PublishedMarks {
    queue: tokio::sync::mpsc::UnboundedSender<String>,
}

impl PublishedMarks {
    /// Starts the task that writes the marks; it ends when every sender is gone.
    pub fn spawn(pool: Pool) -> Self {
        let (queue, mut marks) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while marks.recv_many(&mut batch, 1024).await > 0 {
                // Nothing waits for a mark, so a batch may fill for a moment: one statement (and
                // one commit) per `MARK_LINGER` under steady traffic rather than one per batch
                // of contacts.
                let deadline = tokio::time::Instant::now() + MARK_LINGER;
                while batch.len() < 1024 {
                    let room = 1024 - batch.len();
                    match tokio::time::timeout_at(deadline, marks.recv_many(&mut batch, room)).await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                if let Err(error) = mark_published(&pool, &batch).await {
                    tracing::warn!(%error, count = batch.len(), "outbox entries not marked published; a redelivery republishes them harmlessly");
                }
                batch.clear();
            }
        });
        Self { queue }
    }

    /// Queues the mark of one published entry.
    pub fn mark(&self, event_id: String) {
        // The task ends only with the process; a lost mark costs a harmless republish.
        let _ = self.queue.send(event_id);
    }
}

/// Marks outbox entries as published, in one statement.
async fn mark_published(pool: &Pool, event_ids: &[String]) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("UPDATE processed_events SET published = true WHERE event_id = ANY($1)")
        .await?;
    client.execute(&statement, &[&event_ids]).await?;
    Ok(())
}

pub(crate) async fn already_processed(
    tx: &Transaction<'_>,
    event_id: &str,
) -> Result<Option<Resolution>, StoreError> {
    let row = query_opt_cached(tx,
            "SELECT change_subject, change_msg_id, change_payload, published FROM processed_events WHERE event_id = $1",
            &[&event_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let published: bool = row.get(3);
    let pending = match (
        row.get::<_, Option<String>>(0),
        row.get::<_, Option<String>>(1),
        row.get::<_, Option<Vec<u8>>>(2),
    ) {
        (Some(subject), Some(msg_id), Some(payload)) if !published => Some(Pending {
            event_id: event_id.to_owned(),
            subject,
            msg_id,
            payload,
        }),
        _ => None,
    };
    // Notices carry no published mark: a duplicate sends them again (JetStream drops repeats).
    let notices = query_cached(
        tx,
        "SELECT subject, msg_id, payload FROM review_notices WHERE event_id = $1 ORDER BY msg_id",
        &[&event_id],
    )
    .await?
    .iter()
    .map(|row| Pending {
        event_id: event_id.to_owned(),
        subject: row.get(0),
        msg_id: row.get(1),
        payload: row.get(2),
    })
    .collect();
    Ok(Some(Resolution {
        outcome: Outcome::Duplicate,
        pending,
        notices,
    }))
}

const COLUMNS: &str = "id, email, phone, first_name, last_name, company_name, job_title, \
    lifecycle_stage, marketing_consent, consent_source, source_updated_at, version, phone_key, \
    phone_certainty";

pub(crate) async fn load_for_update(tx: &Transaction<'_>, id: Uuid) -> Result<Golden, StoreError> {
    let row = query_one_cached(
        tx,
        &format!("SELECT {COLUMNS} FROM golden_contacts WHERE id = $1 FOR UPDATE"),
        &[&id],
    )
    .await?;
    Ok(golden_from_row(&row))
}

/// A golden contact from a row of [`COLUMNS`].
fn golden_from_row(row: &tokio_postgres::Row) -> Golden {
    let marketing: Option<bool> = row.get(8);
    Golden {
        id: row.get(0),
        contact: Contact {
            email: row.get(1),
            phone: row.get(2),
            first_name: row.get(3),
            last_name: row.get(4),
            company_name: row.get(5),
            job_title: row.get(6),
            lifecycle_stage: row.get(7),
            consent: marketing.map(|marketing| Consent {
                marketing,
                source: row.get(9),
                given_at: None,
            }),
            address: None,
        },
        phone_key: row.get(12),
        phone_certainty: row.get(13),
        source_updated_at: row.get(10),
        version: row.get(11),
    }
}

pub(crate) async fn update_golden(tx: &Transaction<'_>, g: &Golden) -> Result<(), StoreError> {
    let c = &g.contact;
    let consent = c.consent.as_ref();
    exec(
        tx,
        "UPDATE golden_contacts SET email = $2, phone = $3, first_name = $4, last_name = $5, \
         company_name = $6, job_title = $7, lifecycle_stage = $8, marketing_consent = $9, \
         consent_source = $10, source_updated_at = $11, version = $12, phone_key = $13, \
         phone_certainty = $14, updated_at = now() WHERE id = $1",
        &[
            &g.id,
            &c.email,
            &c.phone,
            &c.first_name,
            &c.last_name,
            &c.company_name,
            &c.job_title,
            &c.lifecycle_stage,
            &consent.map(|c| c.marketing),
            &consent.map(|c| c.source.as_str()).unwrap_or_default(),
            &g.source_updated_at,
            &g.version,
            &g.phone_key,
            &g.phone_certainty,
        ],
    )
    .await?;
    Ok(())
}

/// The source ids of a golden record, ordered by system, then id, then object, byte-wise
/// (`COLLATE "C"`, as Rust orders strings: contacts keep this list in memory while a batch
/// resolves).
pub(crate) async fn external_refs(
    tx: &Transaction<'_>,
    id: Uuid,
) -> Result<Vec<ExternalRef>, StoreError> {
    let rows = query_cached(tx,
            r#"SELECT system, object, external_id FROM crosswalk WHERE golden_id = $1 ORDER BY system COLLATE "C", external_id COLLATE "C", object COLLATE "C""#,
            &[&id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ExternalRef {
            system: row.get(0),
            object: row.get(1),
            id: row.get(2),
        })
        .collect())
}

/// Newer non-empty values win field by field, except that a field another kind of system owns
/// is only filled, never overwritten (`may`); returns the merged contact and the changed fields.
pub(crate) fn merge(
    stored: &Contact,
    incoming: &Contact,
    may: &dyn Fn(&str) -> bool,
) -> (Contact, Vec<String>) {
    let mut merged = stored.clone();
    let mut changed = Vec::new();
    let fields: [(&str, &String, &mut String); 7] = [
        ("email", &incoming.email, &mut merged.email),
        ("phone", &incoming.phone, &mut merged.phone),
        ("first_name", &incoming.first_name, &mut merged.first_name),
        ("last_name", &incoming.last_name, &mut merged.last_name),
        (
            "company_name",
            &incoming.company_name,
            &mut merged.company_name,
        ),
        ("job_title", &incoming.job_title, &mut merged.job_title),
        (
            "lifecycle_stage",
            &incoming.lifecycle_stage,
            &mut merged.lifecycle_stage,
        ),
    ];
    for (name, new, current) in fields {
        if !new.is_empty() && new != current && (may(name) || current.is_empty()) {
            current.clone_from(new);
            changed.push(name.to_owned());
        }
    }
    if let Some(consent) = &incoming.consent {
        let same = merged
            .consent
            .as_ref()
            .is_some_and(|c| c.marketing == consent.marketing && c.source == consent.source);
        if !same && (may("marketing_consent") || merged.consent.is_none()) {
            merged.consent = Some(Consent {
                given_at: None,
                ..consent.clone()
            });
            changed.push("consent".to_owned());
        }
    }
    (merged, changed)
}

pub(crate) fn to_time(ts: Option<&switchyard_proto::Timestamp>) -> OffsetDateTime {
    ts.and_then(|t| {
        let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
        OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
    })
    .unwrap_or_else(OffsetDateTime::now_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(first: &str, phone: &str) -> Contact {
        Contact {
            email: "jane@example.com".to_owned(),
            first_name: first.to_owned(),
            phone: phone.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_conflict_names_the_keys_never_their_values() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let matches = [("source id", a), ("email", a), ("phone", b)];
        assert_eq!(
            conflict_detail(&matches, a, b),
            "source id and email matched golden_a, phone matched golden_b; not merged"
        );
    }

    #[test]
    fn merge_reports_only_real_changes() {
        let stored = contact("Jane", "+4420");
        let (_, changed) = merge(&stored, &contact("Jane", "+4420"), &|_| true);
        assert!(changed.is_empty());
        let (merged, changed) = merge(&stored, &contact("Janet", ""), &|_| true);
        assert_eq!(changed, vec!["first_name".to_owned()]);
        assert_eq!(
            merged.phone, "+4420",
            "an empty value never erases a stored one"
        );
    }
}
