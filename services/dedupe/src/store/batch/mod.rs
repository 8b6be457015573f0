//! Canonical contacts resolved a batch at a time, in one transaction per batch: every lock, every
//! look-up and every candidate record in a few statements up front; then the events, in their
//! order, applied in memory by the matching rules of docs/dedupe.md, each seeing what the events
//! before it did; then every write as one multi-row statement per table. Per-event statements and
//! commits were what bounded dedupe's throughput (docs/benchmarks.md). A batch of one event is the
//! same code: there is no other path for contacts.

use std::collections::{BTreeSet, HashMap, HashSet};

use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{Contact, Envelope, ExternalRef, IdentityConflict};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ContactRules, Golden, Outcome, Pending, Resolution, StoreError, to_time};

use crate::normalize;

use load::look_up;

mod load;
mod resolve;
mod review;
mod write;

/// Resolves canonical contacts into golden records, atomically: the events of `events`, in their
/// order, each exactly as if it had been resolved alone after the ones before it, all in one
/// transaction. Either every event is applied and recorded (with its outbox entry), or none is.
///
/// A contact matches a golden record by its source id (crosswalk), its normalised email or its
/// E.164 phone — any one suffices. When those keys point at more than one golden record, nothing
/// is merged: the conflict is recorded and an OPS notice goes out through the outbox.
pub async fn resolve_contacts(
    pool: &Pool,
    rules: &ContactRules,
    events: &[(Envelope, Contact)],
) -> Result<Vec<Resolution>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let events: Vec<Event<'_>> = events
        .iter()
        .enumerate()
        .map(|(index, (envelope, contact))| Event::new(index, envelope, contact, rules))
        .collect();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut batch = look_up(&tx, &events).await?;
    let mut resolutions = events
        .iter()
        .map(|event| batch.resolve(rules, event))
        .collect::<Result<Vec<_>, _>>()?;
    review::near_duplicates(&mut batch, &tx, rules, &events).await?;
    for (index, notice) in &batch.notices {
        resolutions[*index].notices.push(notice.clone());
    }
    batch.write(&tx).await?;
    tx.commit().await?;
    Ok(resolutions)
}

/// One incoming event, normalised.
struct Event<'a> {
    envelope: &'a Envelope,
    /// The contact as it is stored and delivered: email and phone normalised.
    contact: Contact,
    /// The E.164 match key of the phone; `None` when the phone is missing or unparseable.
    phone_key: Option<String>,
    /// How sure the phone's reading is (`super::certainty_rank`); `None` without a key.
    phone_certainty: Option<i16>,
    occurred_at: OffsetDateTime,
    /// Where the event sits in its batch.
    index: usize,
}

impl<'a> Event<'a> {
    fn new(index: usize, envelope: &'a Envelope, incoming: &Contact, rules: &ContactRules) -> Self {
        let phone = normalize::phone(incoming, rules.default_region);
        let mut contact = incoming.clone();
        contact.email = normalize::email(&incoming.email);
        contact.phone = phone.value().to_owned();
        Self {
            envelope,
            contact,
            phone_key: phone.key().map(str::to_owned),
            phone_certainty: phone.certainty().map(super::certainty_rank),
            occurred_at: to_time(envelope.occurred_at.as_ref()),
            index,
        }
    }

    fn xref(&self) -> (String, String) {
        (
            self.envelope.source_system.clone(),
            self.envelope.source_object_id.clone(),
        )
    }

    /// The advisory lock keys of this event. Missing keys are not locked: '' is not an identity,
    /// and locking it would serialise strangers.
    fn lock_keys(&self) -> impl Iterator<Item = String> + '_ {
        let xref = format!(
            "contact:xref:{}:{}",
            self.envelope.source_system, self.envelope.source_object_id
        );
        let email = (!self.contact.email.is_empty())
            .then(|| format!("contact:email:{}", self.contact.email));
        let phone = self
            .phone_key
            .as_ref()
            .map(|key| format!("contact:phone:{key}"));
        std::iter::once(xref).chain(email).chain(phone)
    }
}

/// Everything a batch's events can reach — every key they carry and every record those lead to,
/// all locked — as the events applied so far left it, and what the batch will write.
#[derive(Default)]
struct Batch {
    /// Event ids processed before this batch → their change if it was never published.
    processed: HashMap<String, Option<Pending>>,
    /// Event ids applied in this batch.
    seen: HashSet<String>,
    /// (system, external id) → golden id.
    xrefs: HashMap<(String, String), Uuid>,
    /// Email → (the record it leads to, whether it is an alias held by a record merged into it).
    emails: HashMap<String, (Uuid, bool)>,
    /// Phone key → (the record it leads to, whether it is an alias).
    phones: HashMap<String, (Uuid, bool)>,
    /// Every record the keys lead to, current.
    records: HashMap<Uuid, Golden>,
    /// The email and phone key of each loaded record as stored, to spot keys that move.
    stored_keys: HashMap<Uuid, (String, Option<String>)>,
    /// The source ids of each record, current, ordered as [`sort_refs`] orders them.
    refs: HashMap<Uuid, Vec<ExternalRef>>,
    /// Records created in this batch, in order.
    created: Vec<Uuid>,
    /// Loaded records this batch changed, in order of their first change.
    updated: Vec<Uuid>,
    written: HashSet<Uuid>,
    /// New crosswalk rows: (system, external id, golden id).
    links: Vec<(String, String, Uuid)>,
    conflicts: Vec<ConflictRow>,
    outbox: Vec<OutboxRow>,
    /// Review notices raised in this batch, by the index of the event that raised them.
    notices: Vec<(usize, Pending)>,
    /// The review notices of events processed before this batch (sent again for a duplicate).
    processed_notices: HashMap<String, Vec<Pending>>,
    /// Records this batch created or changed → the index of the last event that did.
    touched: HashMap<Uuid, usize>,
    /// New near-duplicate blocking keys: (key, golden id, postcode).
    near_keys: Vec<(i64, Uuid, String)>,
    /// The blocking keys each loaded record had before the batch (`crate::near`).
    near_stored: HashMap<Uuid, BTreeSet<i64>>,
}

struct ConflictRow {
    event_id: String,
    golden_a: Uuid,
    golden_b: Uuid,
    detail: String,
    /// `None`: the transaction's time (`now()`).
    detected_at: Option<OffsetDateTime>,
}

/// A `processed_events` row.
struct OutboxRow {
    event_id: String,
    outcome: Outcome,
    golden_id: Option<Uuid>,
    /// The version of the golden record this event made, if it made one.
    version: Option<i64>,
    source_system: String,
    pending: Option<Pending>,
}

/// An identity conflict notice of `kind` between two records.
fn notice(
    envelope: &Envelope,
    kind: &str,
    a: Uuid,
    b: Uuid,
    detail: &str,
    detected_at: OffsetDateTime,
) -> IdentityConflict {
    IdentityConflict {
        event_id: envelope.event_id.clone(),
        object_type: "contact".to_owned(),
        golden_a: a.to_string(),
        golden_b: b.to_string(),
        detail: detail.to_owned(),
        detected_at: Some(switchyard_proto::Timestamp {
            seconds: detected_at.unix_timestamp(),
            nanos: i32::try_from(detected_at.nanosecond()).unwrap_or(0),
        }),
        kind: kind.to_owned(),
        evidence: Vec::new(),
    }
}

/// Source ids in the order `store::external_refs` reads them: system, id, object, byte-wise.
fn sort_refs(refs: &mut [ExternalRef]) {
    refs.sort_by(|a, b| (&a.system, &a.id, &a.object).cmp(&(&b.system, &b.id, &b.object)));
}

#[cfg(test)]
mod tests;
