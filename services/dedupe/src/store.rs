//! Golden contacts in PostgreSQL: match, merge with survivorship, suppress no-ops, and record the
//! outcome per source event in the same transaction as the change (outbox).

use prost::Message as _;
use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use switchyard_proto::v1::{
    CanonicalObject, ChangeKind, Consent, Contact, Envelope, ExternalRef, GoldenChange,
    IdentityConflict, canonical_object,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::normalize;

/// Database failures; all transient from the pipeline's point of view (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] switchyard_chassis::deadpool_postgres::PoolError),
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

/// The result of [`resolve_contact`].
#[derive(Debug)]
pub struct Resolution {
    pub outcome: Outcome,
    /// The change to publish (also for a duplicate whose change was never published).
    pub pending: Option<Pending>,
}

/// What [`resolve_contact`] needs besides the record: where its outcomes go and how phones read.
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
    pub(crate) source_updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// Resolves one canonical contact into the golden record, atomically.
///
/// A contact matches a golden record by its source id (crosswalk), its normalised email or its
/// E.164 phone — any one suffices. When those keys point at more than one golden record, nothing
/// is merged: the conflict is recorded and an OPS notice goes out through the outbox.
pub async fn resolve_contact(
    pool: &Pool,
    rules: &ContactRules,
    envelope: &Envelope,
    incoming: &Contact,
) -> Result<Resolution, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(resolution) = already_processed(&tx, &envelope.event_id).await? {
        tx.commit().await?;
        return Ok(resolution);
    }
    let email = normalize::email(&incoming.email);
    let phone = normalize::phone(&incoming.phone, rules.default_region);
    let phone_key = phone.key().map(str::to_owned);
    let system = envelope.source_system.as_str();
    let external_id = envelope.source_object_id.as_str();
    // Events sharing a key must not race: lock every key, in sorted order to avoid deadlocks.
    // Missing keys are not locked: '' is not an identity, and locking it would serialise strangers.
    let mut keys = vec![format!("contact:xref:{system}:{external_id}")];
    if !email.is_empty() {
        keys.push(format!("contact:email:{email}"));
    }
    if let Some(key) = &phone_key {
        keys.push(format!("contact:phone:{key}"));
    }
    keys.sort();
    // The look-ups are pipelined behind the locks on the one connection: PostgreSQL runs a
    // connection's statements in the order they were sent, so they see the state once the locks
    // are held — one round trip instead of four. The statements are prepared first, so nothing
    // but the executions is in flight and their order is the order below.
    let (lock, xref, by_email, by_phone) = tokio::try_join!(
        tx.prepare_cached(LOCK_KEYS),
        tx.prepare_cached(
            "SELECT golden_id FROM crosswalk WHERE system = $1 AND object = 'contact' AND external_id = $2"
        ),
        // A key held by a record merged into another (merge.rs) leads to the survivor; the flag
        // says the key is such an alias.
        tx.prepare_cached(
            "SELECT coalesce(merged_into, id), merged_into IS NOT NULL FROM golden_contacts WHERE email = $1"
        ),
        tx.prepare_cached(
            "SELECT coalesce(merged_into, id), merged_into IS NOT NULL FROM golden_contacts WHERE phone_key = $1"
        ),
    )?;
    let (lock_params, xref_params): (Params<'_>, Params<'_>) = (&[&keys], &[&system, &external_id]);
    let (_, by_xref, by_email, by_phone) = tokio::try_join!(
        tx.execute(&lock, lock_params),
        tx.query_opt(&xref, xref_params),
        async {
            if email.is_empty() {
                Ok(None)
            } else {
                tx.query_opt(&by_email, &[&email]).await
            }
        },
        async {
            match &phone_key {
                Some(key) => tx.query_opt(&by_phone, &[key]).await,
                None => Ok(None),
            }
        },
    )?;
    let by_xref: Option<Uuid> = by_xref.map(|row| row.get(0));
    let by_email: Option<(Uuid, bool)> = by_email.map(|row| (row.get(0), row.get(1)));
    let by_phone: Option<(Uuid, bool)> = by_phone.map(|row| (row.get(0), row.get(1)));
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
    let occurred_at = to_time(envelope.occurred_at.as_ref());
    let mut incoming = incoming.clone();
    incoming.email = email;
    incoming.phone = phone.value().to_owned();

    let mut conflict = None;
    let (outcome, golden, changed) = match candidates.as_slice() {
        [] => {
            let golden = Golden {
                id: Uuid::now_v7(),
                contact: incoming.clone(),
                phone_key,
                source_updated_at: occurred_at,
                version: 1,
            };
            insert_golden(&tx, &golden).await?;
            (Outcome::Created, Some(golden), Vec::new())
        }
        [id] => {
            let id = *id;
            let stored = load_for_update(&tx, id).await?;
            let phone_only = by_xref.is_none() && by_email.is_none();
            if phone_only
                && !incoming.email.is_empty()
                && !stored.contact.email.is_empty()
                && stored.contact.email != incoming.email
            {
                // The phone matched, the email says someone else: a shared line (a household, a
                // switchboard) or a changed address — never merged silently. The newcomer gets a
                // record of their own, without the phone key the other already holds, and the
                // pair is recorded for review.
                let golden = Golden {
                    id: Uuid::now_v7(),
                    contact: incoming.clone(),
                    phone_key: None,
                    source_updated_at: occurred_at,
                    version: 1,
                };
                insert_golden(&tx, &golden).await?;
                exec(&tx,
                    "INSERT INTO identity_conflicts (event_id, object, golden_a, golden_b, detail) \
                     VALUES ($1, 'contact', $2, $3, 'phone matched golden_a but the email differs; kept apart as golden_b')",
                    &[&envelope.event_id, &id, &golden.id],
                )
                .await?;
                tracing::warn!(event_id = %envelope.event_id, golden_a = %id, golden_b = %golden.id,
                    "phone shared by a different email; new record kept apart and conflict recorded");
                (Outcome::Created, Some(golden), Vec::new())
            } else if occurred_at < stored.source_updated_at {
                (Outcome::Stale, None, Vec::new())
            } else {
                let may = |field: &str| {
                    rules
                        .write_rules
                        .may_overwrite("contact", field, &envelope.source_kind)
                };
                let mut update = incoming.clone();
                if email_alias {
                    update.email.clear();
                }
                if phone_alias {
                    update.phone.clear();
                }
                let (merged, changed) = merge(&stored.contact, &update, &may);
                if changed.is_empty() {
                    (Outcome::NoOp, None, Vec::new())
                } else {
                    // The key follows the stored phone: it moves only when this event's phone
                    // (normalised, locked and looked up above) replaced it.
                    let phone_key = if changed.iter().any(|field| field == "phone") {
                        phone_key
                    } else {
                        stored.phone_key
                    };
                    let golden = Golden {
                        id,
                        contact: merged,
                        phone_key,
                        source_updated_at: occurred_at,
                        version: stored.version + 1,
                    };
                    update_golden(&tx, &golden).await?;
                    (Outcome::Updated, Some(golden), changed)
                }
            }
        }
        [a, others @ ..] => {
            let detected_at = OffsetDateTime::now_utc();
            for b in others {
                let detail = conflict_detail(&matches, *a, *b);
                exec(&tx,
                    "INSERT INTO identity_conflicts (event_id, object, golden_a, golden_b, detail, detected_at) \
                     VALUES ($1, 'contact', $2, $3, $4, $5)",
                    &[&envelope.event_id, a, b, &detail, &detected_at],
                )
                .await?;
                tracing::warn!(
                    event_id = %envelope.event_id,
                    golden_a = %a,
                    golden_b = %b,
                    %detail,
                    "identity conflict recorded; records kept apart"
                );
                // One notice per event (the outbox holds one message); every pair is in the table.
                conflict.get_or_insert_with(|| IdentityConflict {
                    event_id: envelope.event_id.clone(),
                    object_type: "contact".to_owned(),
                    golden_a: a.to_string(),
                    golden_b: b.to_string(),
                    detail,
                    detected_at: Some(switchyard_proto::Timestamp {
                        seconds: detected_at.unix_timestamp(),
                        nanos: i32::try_from(detected_at.nanosecond()).unwrap_or(0),
                    }),
                });
            }
            (Outcome::Conflict, None, Vec::new())
        }
    };
    let golden_id = golden
        .as_ref()
        .map(|g| g.id)
        .or_else(|| candidates.first().copied());
    if let (Some(id), None) = (golden_id, by_xref)
        && outcome != Outcome::Conflict
    {
        {
            exec(&tx,
                "INSERT INTO crosswalk (system, object, external_id, golden_id) VALUES ($1, 'contact', $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&system, &external_id, &id],
            )
            .await?;
        }
    }
    let pending = match (&golden, conflict) {
        (Some(golden), _) => {
            let refs = external_refs(&tx, golden.id).await?;
            let kind = if outcome == Outcome::Created {
                ChangeKind::Created
            } else {
                ChangeKind::Updated
            };
            let change = GoldenChange {
                change_id: format!("{}:{}", golden.id, golden.version),
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
                external_refs: refs,
            };
            Some(Pending {
                event_id: envelope.event_id.clone(),
                subject: rules.golden_subject.clone(),
                msg_id: format!("golden:{}", change.change_id),
                payload: change.encode_to_vec(),
            })
        }
        // The conflict notice rides the same outbox as golden changes: published after commit,
        // republished from here if the service dies in between.
        (None, Some(conflict)) => Some(Pending {
            event_id: envelope.event_id.clone(),
            subject: rules.conflict_subject.clone(),
            msg_id: format!("conflict:{}", envelope.event_id),
            payload: conflict.encode_to_vec(),
        }),
        (None, None) => None,
    };
    exec(&tx,
        "INSERT INTO processed_events (event_id, outcome, golden_id, change_subject, change_msg_id, change_payload) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &envelope.event_id,
            &outcome.as_str(),
            &golden_id,
            &pending.as_ref().map(|p| p.subject.as_str()),
            &pending.as_ref().map(|p| p.msg_id.as_str()),
            &pending.as_ref().map(|p| p.payload.as_slice()),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Resolution { outcome, pending })
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

/// Takes transaction-scoped advisory locks on `keys` (sorted by the caller), in their order, in
/// one round trip: `WITH ORDINALITY` keeps the array's order.
pub(crate) async fn lock_keys(tx: &Transaction<'_>, keys: &[String]) -> Result<(), StoreError> {
    exec(tx, LOCK_KEYS, &[&keys]).await?;
    Ok(())
}

/// Locks the sorted text keys of `$1` in their order (`WITH ORDINALITY` keeps the array's order).
const LOCK_KEYS: &str = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) \
     FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n";

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
    Ok(row.map(|row| {
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
        Resolution {
            outcome: Outcome::Duplicate,
            pending,
        }
    }))
}

const COLUMNS: &str = "id, email, phone, first_name, last_name, company_name, job_title, \
    lifecycle_stage, marketing_consent, consent_source, source_updated_at, version, phone_key";

pub(crate) async fn load_for_update(tx: &Transaction<'_>, id: Uuid) -> Result<Golden, StoreError> {
    let row = query_one_cached(
        tx,
        &format!("SELECT {COLUMNS} FROM golden_contacts WHERE id = $1 FOR UPDATE"),
        &[&id],
    )
    .await?;
    let marketing: Option<bool> = row.get(8);
    Ok(Golden {
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
        source_updated_at: row.get(10),
        version: row.get(11),
    })
}

async fn insert_golden(tx: &Transaction<'_>, g: &Golden) -> Result<(), StoreError> {
    let c = &g.contact;
    let consent = c.consent.as_ref();
    exec(tx,
        &format!("INSERT INTO golden_contacts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
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
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update_golden(tx: &Transaction<'_>, g: &Golden) -> Result<(), StoreError> {
    let c = &g.contact;
    let consent = c.consent.as_ref();
    exec(
        tx,
        "UPDATE golden_contacts SET email = $2, phone = $3, first_name = $4, last_name = $5, \
         company_name = $6, job_title = $7, lifecycle_stage = $8, marketing_consent = $9, \
         consent_source = $10, source_updated_at = $11, version = $12, phone_key = $13, \
         updated_at = now() WHERE id = $1",
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
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn external_refs(
    tx: &Transaction<'_>,
    id: Uuid,
) -> Result<Vec<ExternalRef>, StoreError> {
    let rows = query_cached(tx,
            "SELECT system, object, external_id FROM crosswalk WHERE golden_id = $1 ORDER BY system, external_id",
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
