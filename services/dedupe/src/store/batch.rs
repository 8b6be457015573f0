//! Canonical contacts resolved a batch at a time, in one transaction per batch: every lock, every
//! look-up and every candidate record in a few statements up front; then the events, in their
//! order, applied in memory by the matching rules of docs/dedupe.md, each seeing what the events
//! before it did; then every write as one multi-row statement per table. Per-event statements and
//! commits were what bounded dedupe's throughput (docs/benchmarks.md). A batch of one event is the
//! same code: there is no other path for contacts.

use std::collections::{BTreeSet, HashMap, HashSet};

use prost::Message as _;
use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use switchyard_proto::v1::{
    CanonicalObject, ChangeKind, Contact, Envelope, ExternalRef, GoldenChange, IdentityConflict,
    canonical_object,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{
    COLUMNS, ContactRules, Golden, LOCK_KEYS, Outcome, Params, Pending, Resolution, StoreError,
    conflict_detail, golden_from_row, merge, to_time,
};
use switchyard_chassis::ids::{ChangeId, MsgId};

use crate::normalize;

#[path = "review.rs"]
mod review;

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

const PHONE_SHARED: &str = "phone matched golden_a but the email differs; kept apart as golden_b";

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

/// Takes the batch's locks, then reads everything its events can reach, in two round trips.
async fn look_up(tx: &Transaction<'_>, events: &[Event<'_>]) -> Result<Batch, StoreError> {
    // Events sharing a key must not race: every key of every event is locked up front, in one
    // sorted, de-duplicated list, so no two transactions (batches, replicas, operator commands)
    // ever wait on each other in a cycle.
    let keys: Vec<String> = events
        .iter()
        .flat_map(Event::lock_keys)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let event_ids: Vec<&str> = events
        .iter()
        .map(|e| e.envelope.event_id.as_str())
        .collect();
    let (systems, external_ids): (Vec<&str>, Vec<&str>) = events
        .iter()
        .map(|e| {
            (
                e.envelope.source_system.as_str(),
                e.envelope.source_object_id.as_str(),
            )
        })
        .unzip();
    let emails: Vec<&str> = events
        .iter()
        .map(|e| e.contact.email.as_str())
        .filter(|email| !email.is_empty())
        .collect();
    let phones: Vec<&str> = events
        .iter()
        .filter_map(|e| e.phone_key.as_deref())
        .collect();
    // The look-ups are pipelined behind the locks on the one connection: PostgreSQL runs a
    // connection's statements in the order they were sent, so they see the state once every lock
    // is held (and the idempotency check sees an event a concurrent batch just committed). The
    // statements are prepared first, so nothing but the executions is in flight and their order
    // is the order below.
    let (lock, processed, notices, xref, by_email, by_phone) = tokio::try_join!(
        tx.prepare_cached(LOCK_KEYS),
        tx.prepare_cached(
            "SELECT event_id, change_subject, change_msg_id, change_payload, published \
             FROM processed_events WHERE event_id = ANY($1)"
        ),
        tx.prepare_cached(
            "SELECT event_id, subject, msg_id, payload FROM review_notices \
             WHERE event_id = ANY($1) ORDER BY msg_id"
        ),
        tx.prepare_cached(
            "SELECT system, external_id, golden_id FROM crosswalk WHERE object = 'contact' \
             AND (system, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        ),
        // A key held by a record merged into another (merge.rs) leads to the survivor; the flag
        // says the key is such an alias. The `<> ''` and `IS NOT NULL` let the planner use the
        // partial unique indexes whatever the array holds.
        tx.prepare_cached(
            "SELECT email, coalesce(merged_into, id), merged_into IS NOT NULL \
             FROM golden_contacts WHERE email = ANY($1) AND email <> ''"
        ),
        tx.prepare_cached(
            "SELECT phone_key, coalesce(merged_into, id), merged_into IS NOT NULL \
             FROM golden_contacts WHERE phone_key = ANY($1) AND phone_key IS NOT NULL"
        ),
    )?;
    let params: [Params<'_>; 5] = [
        &[&keys],
        &[&event_ids],
        &[&systems, &external_ids],
        &[&emails],
        &[&phones],
    ];
    let (locked, processed, notices, xref, by_email, by_phone) = tokio::join!(
        tx.execute(&lock, params[0]),
        tx.query(&processed, params[1]),
        tx.query(&notices, params[1]),
        tx.query(&xref, params[2]),
        tx.query(&by_email, params[3]),
        tx.query(&by_phone, params[4]),
    );
    // In the order sent: after a failure the later statements only say the transaction aborted.
    locked?;
    let (processed, notices, xref, by_email, by_phone) =
        (processed?, notices?, xref?, by_email?, by_phone?);

    let mut batch = Batch::default();
    for row in &notices {
        let event_id: String = row.get(0);
        batch
            .processed_notices
            .entry(event_id.clone())
            .or_default()
            .push(Pending {
                event_id,
                subject: row.get(1),
                msg_id: row.get(2),
                payload: row.get(3),
            });
    }
    for row in &processed {
        let event_id: String = row.get(0);
        let published: bool = row.get(4);
        let pending = match (
            row.get::<_, Option<String>>(1),
            row.get::<_, Option<String>>(2),
            row.get::<_, Option<Vec<u8>>>(3),
        ) {
            (Some(subject), Some(msg_id), Some(payload)) if !published => Some(Pending {
                event_id: event_id.clone(),
                subject,
                msg_id,
                payload,
            }),
            _ => None,
        };
        batch.processed.insert(event_id, pending);
    }
    let mut candidates = BTreeSet::new();
    for row in &xref {
        let id: Uuid = row.get(2);
        batch.xrefs.insert((row.get(0), row.get(1)), id);
        candidates.insert(id);
    }
    for (rows, keys) in [
        (&by_email, &mut batch.emails),
        (&by_phone, &mut batch.phones),
    ] {
        for row in rows {
            let id: Uuid = row.get(1);
            keys.insert(row.get(0), (id, row.get(2)));
            candidates.insert(id);
        }
    }
    if candidates.is_empty() {
        return Ok(batch);
    }
    // Every record a key leads to, locked in id order (so two batches reaching the same records
    // through different keys lock them in the same order), and its source ids.
    let ids: Vec<Uuid> = candidates.into_iter().collect();
    let load =
        format!("SELECT {COLUMNS} FROM golden_contacts WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    let (load, refs) = tokio::try_join!(
        tx.prepare_cached(&load),
        tx.prepare_cached(
            "SELECT golden_id, system, object, external_id FROM crosswalk WHERE golden_id = ANY($1)"
        ),
    )?;
    let params: Params<'_> = &[&ids];
    let (rows, refs) = tokio::join!(tx.query(&load, params), tx.query(&refs, params));
    let (rows, refs) = (rows?, refs?);
    for row in &rows {
        let golden = golden_from_row(row);
        batch
            .near_stored
            .insert(golden.id, crate::near::Profile::of(&golden.contact).keys());
        batch.stored_keys.insert(
            golden.id,
            (golden.contact.email.clone(), golden.phone_key.clone()),
        );
        batch.refs.insert(golden.id, Vec::new());
        batch.records.insert(golden.id, golden);
    }
    for row in &refs {
        batch.refs.entry(row.get(0)).or_default().push(ExternalRef {
            system: row.get(1),
            object: row.get(2),
            id: row.get(3),
        });
    }
    batch.refs.values_mut().for_each(|refs| sort_refs(refs));
    Ok(batch)
}

/// Source ids in the order `store::external_refs` reads them: system, id, object, byte-wise.
fn sort_refs(refs: &mut [ExternalRef]) {
    refs.sort_by(|a, b| (&a.system, &a.id, &a.object).cmp(&(&b.system, &b.id, &b.object)));
}

impl Batch {
    /// Applies one event to the batch's state, exactly as resolving it alone would have applied it
    /// to the database, and records what is to be written.
    fn resolve(
        &mut self,
        rules: &ContactRules,
        event: &Event<'_>,
    ) -> Result<Resolution, StoreError> {
        let envelope = event.envelope;
        if let Some(pending) = self.processed.get(&envelope.event_id) {
            return Ok(Resolution {
                outcome: Outcome::Duplicate,
                pending: pending.clone(),
                notices: self
                    .processed_notices
                    .get(&envelope.event_id)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        if !self.seen.insert(envelope.event_id.clone()) {
            // Twice in one batch: the first one's change is published with the batch, before
            // either message is acknowledged.
            return Ok(Resolution {
                outcome: Outcome::Duplicate,
                pending: None,
                notices: Vec::new(),
            });
        }
        let xref = event.xref();
        let by_xref = self.xrefs.get(&xref).copied();
        let email = event.contact.email.as_str();
        let by_email = if email.is_empty() {
            None
        } else {
            self.emails.get(email).copied()
        };
        let by_phone = event
            .phone_key
            .as_ref()
            .and_then(|key| self.phones.get(key).copied());
        // An alias stays with the merged record: it never replaces the survivor's own key (and the
        // unique indexes allow one holder).
        let aliased = |found: Option<(Uuid, bool)>| found.is_some_and(|(_, alias)| alias);
        let (email_alias, phone_alias) = (aliased(by_email), aliased(by_phone));
        let (by_email, by_phone) = (by_email.map(|(id, _)| id), by_phone.map(|(id, _)| id));
        let matches: Vec<(&'static str, Uuid)> = [
            ("source id", by_xref),
            ("email", by_email),
            ("phone", by_phone),
        ]
        .into_iter()
        .filter_map(|(key, id)| id.map(|id| (key, id)))
        .collect();
        let mut candidates: Vec<Uuid> = Vec::new();
        for (_, id) in &matches {
            if !candidates.contains(id) {
                candidates.push(*id);
            }
        }

        let mut conflict = None;
        let (outcome, golden, changed) = match candidates.as_slice() {
            [] => {
                let golden = Golden {
                    id: Uuid::now_v7(),
                    contact: event.contact.clone(),
                    phone_key: event.phone_key.clone(),
                    phone_certainty: event.phone_certainty,
                    source_updated_at: event.occurred_at,
                    version: 1,
                };
                self.create(&golden);
                (Outcome::Created, Some(golden), Vec::new())
            }
            [id] => {
                let id = *id;
                let stored = self.records.get(&id).ok_or(StoreError::Missing(id))?;
                let phone_only = by_xref.is_none() && by_email.is_none();
                if phone_only
                    && !event.contact.email.is_empty()
                    && !stored.contact.email.is_empty()
                    && stored.contact.email != event.contact.email
                {
                    // The phone matched, the email says someone else: a shared line (a household,
                    // a switchboard) or a changed address — never merged silently. The newcomer
                    // gets a record of their own, without the phone key the other already holds,
                    // and the pair is recorded for review.
                    let golden = Golden {
                        id: Uuid::now_v7(),
                        contact: event.contact.clone(),
                        phone_key: None,
                        phone_certainty: None,
                        source_updated_at: event.occurred_at,
                        version: 1,
                    };
                    self.create(&golden);
                    let detected_at = OffsetDateTime::now_utc();
                    self.notice(
                        rules,
                        event,
                        MsgId::Conflict {
                            event_id: &envelope.event_id,
                            other: None,
                        }
                        .to_string(),
                        notice(
                            envelope,
                            "phone_shared",
                            id,
                            golden.id,
                            PHONE_SHARED,
                            detected_at,
                        ),
                    );
                    self.conflicts.push(ConflictRow {
                        event_id: envelope.event_id.clone(),
                        golden_a: id,
                        golden_b: golden.id,
                        detail: PHONE_SHARED.to_owned(),
                        detected_at: Some(detected_at),
                    });
                    tracing::warn!(event_id = %envelope.event_id, golden_a = %id, golden_b = %golden.id,
                        "phone shared by a different email; new record kept apart and conflict recorded");
                    (Outcome::Created, Some(golden), Vec::new())
                } else if event.occurred_at < stored.source_updated_at {
                    (Outcome::Stale, None, Vec::new())
                } else {
                    let may = |field: &str| {
                        rules
                            .write_rules
                            .may_overwrite("contact", field, &envelope.source_kind)
                    };
                    let mut update = event.contact.clone();
                    if email_alias {
                        update.email.clear();
                    }
                    // A valid phone stays unless a reading at least as sure replaces it: an
                    // unparseable number, or a national number guessed in the default region over
                    // one the record stated, never does.
                    if phone_alias
                        || !super::phone_may_replace(
                            stored,
                            event.phone_key.as_deref(),
                            event.phone_certainty,
                        )
                    {
                        update.phone.clear();
                    }
                    let (merged, changed) = merge(&stored.contact, &update, &may);
                    if changed.is_empty() {
                        (Outcome::NoOp, None, Vec::new())
                    } else {
                        // The key follows the stored phone: it moves only when this event's phone
                        // (normalised, locked and looked up above) replaced it.
                        let (phone_key, phone_certainty) =
                            if changed.iter().any(|field| field == "phone") {
                                (event.phone_key.clone(), event.phone_certainty)
                            } else {
                                (stored.phone_key.clone(), stored.phone_certainty)
                            };
                        let golden = Golden {
                            id,
                            contact: merged,
                            phone_key,
                            phone_certainty,
                            source_updated_at: event.occurred_at,
                            version: stored.version + 1,
                        };
                        self.update(golden.clone());
                        (Outcome::Updated, Some(golden), changed)
                    }
                }
            }
            [a, others @ ..] => {
                let detected_at = OffsetDateTime::now_utc();
                for b in others {
                    let detail = conflict_detail(&matches, *a, *b);
                    tracing::warn!(
                        event_id = %envelope.event_id,
                        golden_a = %a,
                        golden_b = %b,
                        %detail,
                        "identity conflict recorded; records kept apart"
                    );
                    // The first pair rides the event's outbox row; every other pair is a review
                    // notice of its own, so operators see them all.
                    let pair = notice(envelope, "keys_disagree", *a, *b, &detail, detected_at);
                    if conflict.is_none() {
                        conflict = Some(pair);
                    } else {
                        self.notice(
                            rules,
                            event,
                            MsgId::Conflict {
                                event_id: &envelope.event_id,
                                other: Some(*b),
                            }
                            .to_string(),
                            pair,
                        );
                    }
                    self.conflicts.push(ConflictRow {
                        event_id: envelope.event_id.clone(),
                        golden_a: *a,
                        golden_b: *b,
                        detail,
                        detected_at: Some(detected_at),
                    });
                }
                (Outcome::Conflict, None, Vec::new())
            }
        };
        if let Some(golden) = &golden {
            self.touched.insert(golden.id, event.index);
        }
        let golden_id = golden
            .as_ref()
            .map(|g| g.id)
            .or_else(|| candidates.first().copied());
        // Unless it was a conflict, the source id is linked to the record it resolved to (also for
        // a no-op or a stale event), so its later events match by source id.
        if let (Some(id), None) = (golden_id, by_xref)
            && outcome != Outcome::Conflict
        {
            self.link(xref, id);
        }
        let pending = match (&golden, conflict) {
            (Some(golden), _) => {
                let kind = if outcome == Outcome::Created {
                    ChangeKind::Created
                } else {
                    ChangeKind::Updated
                };
                let change = GoldenChange {
                    change_id: ChangeId {
                        golden: golden.id,
                        version: golden.version,
                    }
                    .to_string(),
                    golden_id: golden.id.to_string(),
                    object_type: "contact".to_owned(),
                    kind: kind.into(),
                    version: golden.version,
                    changed_fields: changed,
                    cause: Some(envelope.clone()),
                    record: Some(CanonicalObject {
                        envelope: Some(envelope.clone()),
                        object: Some(canonical_object::Object::Contact(golden.contact.clone())),
                    }),
                    external_refs: self.refs.get(&golden.id).cloned().unwrap_or_default(),
                    related: Vec::new(),
                };
                Some(Pending {
                    event_id: envelope.event_id.clone(),
                    subject: rules.golden_subject.clone(),
                    msg_id: MsgId::Golden(ChangeId {
                        golden: golden.id,
                        version: golden.version,
                    })
                    .to_string(),
                    payload: change.encode_to_vec(),
                })
            }
            // The conflict notice rides the same outbox as golden changes: published after
            // commit, republished from there if the service dies in between.
            (None, Some(conflict)) => Some(Pending {
                event_id: envelope.event_id.clone(),
                subject: rules.conflict_subject.clone(),
                msg_id: MsgId::Conflict {
                    event_id: &envelope.event_id,
                    other: None,
                }
                .to_string(),
                payload: conflict.encode_to_vec(),
            }),
            (None, None) => None,
        };
        self.outbox.push(OutboxRow {
            event_id: envelope.event_id.clone(),
            outcome,
            golden_id,
            version: golden.as_ref().map(|g| g.version),
            source_system: envelope.source_system.clone(),
            pending: pending.clone(),
        });
        // The batch's notices of this event join it once every event is resolved.
        Ok(Resolution {
            outcome,
            pending,
            notices: Vec::new(),
        })
    }

    /// A review notice of `event`, published with the batch's changes.
    fn notice(
        &mut self,
        rules: &ContactRules,
        event: &Event<'_>,
        msg_id: String,
        conflict: IdentityConflict,
    ) {
        self.notices.push((
            event.index,
            Pending {
                event_id: event.envelope.event_id.clone(),
                subject: rules.conflict_subject.clone(),
                msg_id,
                payload: conflict.encode_to_vec(),
            },
        ));
    }

    /// A new record: it holds its email and phone key from now on.
    fn create(&mut self, golden: &Golden) {
        if !golden.contact.email.is_empty() {
            self.emails
                .insert(golden.contact.email.clone(), (golden.id, false));
        }
        if let Some(key) = &golden.phone_key {
            self.phones.insert(key.clone(), (golden.id, false));
        }
        self.refs.insert(golden.id, Vec::new());
        self.records.insert(golden.id, golden.clone());
        self.created.push(golden.id);
        self.written.insert(golden.id);
    }

    /// A changed record: a key it gave up leads nowhere any more, a key it took leads to it.
    fn update(&mut self, golden: Golden) {
        let id = golden.id;
        let (email, phone_key) = (golden.contact.email.clone(), golden.phone_key.clone());
        // Every record an event resolves to is in `records` (loaded or created by the batch).
        let before = self.records.insert(id, golden);
        let (old_email, old_key) = before
            .map(|b| (b.contact.email, b.phone_key))
            .unwrap_or_default();
        if old_email != email {
            if self.emails.get(&old_email) == Some(&(id, false)) {
                self.emails.remove(&old_email);
            }
            if !email.is_empty() {
                self.emails.insert(email, (id, false));
            }
        }
        if old_key != phone_key {
            if let Some(old) = &old_key
                && self.phones.get(old) == Some(&(id, false))
            {
                self.phones.remove(old);
            }
            if let Some(key) = phone_key {
                self.phones.insert(key, (id, false));
            }
        }
        if self.written.insert(id) {
            self.updated.push(id);
        }
    }

    /// Links a source id to a record.
    fn link(&mut self, (system, external_id): (String, String), id: Uuid) {
        let refs = self.refs.entry(id).or_default();
        refs.push(ExternalRef {
            system: system.clone(),
            object: "contact".to_owned(),
            id: external_id.clone(),
        });
        sort_refs(refs);
        self.xrefs.insert((system.clone(), external_id.clone()), id);
        self.links.push((system, external_id, id));
    }

    /// Writes the batch's outcome: one statement per table, pipelined.
    async fn write(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        // A key may move between records within a batch (a record's email replaced through its
        // source id, then taken by a new record). Each statement checks the unique indexes row by
        // row, so the records whose keys moved first let go of the keys they held; the final
        // state is then written, and no intermediate state ever has two holders of a key.
        let mut release = (Vec::new(), Vec::new(), Vec::new());
        for id in &self.updated {
            let golden = &self.records[id];
            let (email_moved, phone_moved) = match self.stored_keys.get(id) {
                Some((email, phone_key)) => (
                    golden.contact.email != *email,
                    golden.phone_key != *phone_key,
                ),
                None => (true, true),
            };
            if email_moved || phone_moved {
                release.0.push(*id);
                release.1.push(email_moved);
                release.2.push(phone_moved);
            }
        }
        let created = GoldenColumns::of(self.created.iter().map(|id| &self.records[id]));
        let updated = GoldenColumns::of(self.updated.iter().map(|id| &self.records[id]));
        let links = (
            self.links.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
            self.links.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
            self.links.iter().map(|l| l.2).collect::<Vec<_>>(),
        );
        let conflicts = (
            self.conflicts
                .iter()
                .map(|c| c.event_id.as_str())
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.golden_a)
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.golden_b)
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.detail.as_str())
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.detected_at)
                .collect::<Vec<_>>(),
        );
        let outbox = (
            self.outbox
                .iter()
                .map(|o| o.event_id.as_str())
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.outcome.as_str())
                .collect::<Vec<_>>(),
            self.outbox.iter().map(|o| o.golden_id).collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.subject.as_str()))
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.msg_id.as_str()))
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.payload.as_slice()))
                .collect::<Vec<_>>(),
            self.outbox.iter().map(|o| o.version).collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.source_system.as_str())
                .collect::<Vec<_>>(),
        );
        let insert = format!(
            "INSERT INTO golden_contacts ({COLUMNS}) SELECT * FROM unnest({GOLDEN_ARRAYS})"
        );
        let update = format!(
            "UPDATE golden_contacts g SET email = u.email, phone = u.phone, \
             first_name = u.first_name, last_name = u.last_name, \
             company_name = u.company_name, job_title = u.job_title, \
             lifecycle_stage = u.lifecycle_stage, marketing_consent = u.marketing_consent, \
             consent_source = u.consent_source, source_updated_at = u.source_updated_at, \
             version = u.version, phone_key = u.phone_key, \
             phone_certainty = u.phone_certainty, updated_at = now() \
             FROM unnest({GOLDEN_ARRAYS}) AS u({COLUMNS}) WHERE g.id = u.id"
        );
        let notices = (
            self.notices
                .iter()
                .map(|(_, n)| n.msg_id.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.event_id.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.subject.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.payload.as_slice())
                .collect::<Vec<_>>(),
        );
        let near = (
            self.near_keys.iter().map(|k| k.0).collect::<Vec<_>>(),
            self.near_keys.iter().map(|k| k.1).collect::<Vec<_>>(),
            self.near_keys
                .iter()
                .map(|k| k.2.as_str())
                .collect::<Vec<_>>(),
        );
        let (notice_stmt, near_stmt) = tokio::try_join!(
            tx.prepare_cached(
                "INSERT INTO review_notices (msg_id, event_id, subject, payload) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
                 ON CONFLICT DO NOTHING"
            ),
            tx.prepare_cached(
                "INSERT INTO contact_near_keys (key, golden_id, postcode) \
                 SELECT * FROM unnest($1::int8[], $2::uuid[], $3::text[]) \
                 ON CONFLICT (key, golden_id) DO UPDATE SET postcode = EXCLUDED.postcode"
            ),
        )?;
        let (release_stmt, insert, update, crosswalk, conflict, processed) = tokio::try_join!(
            tx.prepare_cached(
                "UPDATE golden_contacts g SET \
                 email = CASE WHEN r.email THEN '' ELSE g.email END, \
                 phone_key = CASE WHEN r.phone THEN NULL ELSE g.phone_key END \
                 FROM unnest($1::uuid[], $2::bool[], $3::bool[]) AS r(id, email, phone) \
                 WHERE g.id = r.id"
            ),
            tx.prepare_cached(&insert),
            tx.prepare_cached(&update),
            tx.prepare_cached(
                "INSERT INTO crosswalk (system, object, external_id, golden_id) \
                 SELECT s, 'contact', e, g FROM unnest($1::text[], $2::text[], $3::uuid[]) AS t(s, e, g) \
                 ON CONFLICT DO NOTHING"
            ),
            tx.prepare_cached(
                "INSERT INTO identity_conflicts (event_id, object, golden_a, golden_b, detail, detected_at) \
                 SELECT e, 'contact', a, b, d, coalesce(t, now()) \
                 FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[]) \
                 WITH ORDINALITY AS c(e, a, b, d, t, n) ORDER BY n"
            ),
            tx.prepare_cached(
                "INSERT INTO processed_events (event_id, outcome, golden_id, change_subject, change_msg_id, change_payload, version, source_system) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::int8[], $8::text[])"
            ),
        )?;
        let (created, updated) = (created.params(), updated.params());
        let notice_params: Params<'_> = &[&notices.0, &notices.1, &notices.2, &notices.3];
        let near_params: Params<'_> = &[&near.0, &near.1, &near.2];
        let params: [Params<'_>; 6] = [
            &[&release.0, &release.1, &release.2],
            &created,
            &updated,
            &[&links.0, &links.1, &links.2],
            &[
                &conflicts.0,
                &conflicts.1,
                &conflicts.2,
                &conflicts.3,
                &conflicts.4,
            ],
            &[
                &outbox.0, &outbox.1, &outbox.2, &outbox.3, &outbox.4, &outbox.5, &outbox.6,
                &outbox.7,
            ],
        ];
        // Pipelined in this order (see `look_up`); empty statements are not sent.
        let results = tokio::join!(
            execute_unless(tx, &release_stmt, params[0], release.0.is_empty()),
            execute_unless(tx, &insert, params[1], self.created.is_empty()),
            execute_unless(tx, &update, params[2], self.updated.is_empty()),
            execute_unless(tx, &crosswalk, params[3], links.0.is_empty()),
            execute_unless(tx, &conflict, params[4], conflicts.0.is_empty()),
            execute_unless(tx, &processed, params[5], outbox.0.is_empty()),
            execute_unless(tx, &notice_stmt, notice_params, notices.0.is_empty()),
            execute_unless(tx, &near_stmt, near_params, near.0.is_empty()),
        );
        // The first failure is the cause; the statements after it only report the abort.
        results.0?;
        results.1?;
        results.2?;
        results.3?;
        results.4?;
        results.5?;
        results.6?;
        results.7?;
        Ok(())
    }
}

/// Executes `statement` unless there is nothing to write.
async fn execute_unless(
    tx: &Transaction<'_>,
    statement: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
    nothing: bool,
) -> Result<u64, tokio_postgres::Error> {
    if nothing {
        Ok(0)
    } else {
        tx.execute(statement, params).await
    }
}

/// The array parameters of a multi-row statement over golden contacts, in [`COLUMNS`] order.
const GOLDEN_ARRAYS: &str = "$1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
    $6::text[], $7::text[], $8::text[], $9::bool[], $10::text[], $11::timestamptz[], \
    $12::bigint[], $13::text[], $14::smallint[]";

/// Golden contacts as one array per column, in [`COLUMNS`] order.
#[derive(Default)]
struct GoldenColumns<'a> {
    id: Vec<Uuid>,
    email: Vec<&'a str>,
    phone: Vec<&'a str>,
    first_name: Vec<&'a str>,
    last_name: Vec<&'a str>,
    company_name: Vec<&'a str>,
    job_title: Vec<&'a str>,
    lifecycle_stage: Vec<&'a str>,
    marketing_consent: Vec<Option<bool>>,
    consent_source: Vec<&'a str>,
    source_updated_at: Vec<OffsetDateTime>,
    version: Vec<i64>,
    phone_key: Vec<Option<&'a str>>,
    phone_certainty: Vec<Option<i16>>,
}

impl<'a> GoldenColumns<'a> {
    fn of(goldens: impl Iterator<Item = &'a Golden>) -> Self {
        let mut columns = Self::default();
        for g in goldens {
            let c = &g.contact;
            let consent = c.consent.as_ref();
            columns.id.push(g.id);
            columns.email.push(&c.email);
            columns.phone.push(&c.phone);
            columns.first_name.push(&c.first_name);
            columns.last_name.push(&c.last_name);
            columns.company_name.push(&c.company_name);
            columns.job_title.push(&c.job_title);
            columns.lifecycle_stage.push(&c.lifecycle_stage);
            columns.marketing_consent.push(consent.map(|c| c.marketing));
            columns
                .consent_source
                .push(consent.map(|c| c.source.as_str()).unwrap_or_default());
            columns.source_updated_at.push(g.source_updated_at);
            columns.version.push(g.version);
            columns.phone_key.push(g.phone_key.as_deref());
            columns.phone_certainty.push(g.phone_certainty);
        }
        columns
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.email,
            &self.phone,
            &self.first_name,
            &self.last_name,
            &self.company_name,
            &self.job_title,
            &self.lifecycle_stage,
            &self.marketing_consent,
            &self.consent_source,
            &self.source_updated_at,
            &self.version,
            &self.phone_key,
            &self.phone_certainty,
        ]
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
