//! A batch's look-ups: its locks, then every record its events' keys lead to, in two round trips.

use std::collections::BTreeSet;

use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_proto::v1::ExternalRef;
use uuid::Uuid;

use super::{Batch, Event, sort_refs};
use crate::store::{COLUMNS, LOCK_KEYS, Params, Pending, StoreError, golden_from_row};

/// Takes the batch's locks, then reads everything its events can reach, in two round trips.
pub(super) async fn look_up(
    tx: &Transaction<'_>,
    events: &[Event<'_>],
) -> Result<Batch, StoreError> {
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
