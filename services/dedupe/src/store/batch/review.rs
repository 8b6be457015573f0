//! The batch's near-duplicate review: every contact the batch created or changed is compared with
//! the contacts sharing one of its blocking keys (`contact_near_keys`, and the batch's own), by the
//! rules of `crate::near`; each likely pair becomes one review notice, once per pair ever.

use std::collections::{BTreeSet, HashMap, HashSet};

use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_chassis::ids::MsgId;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Batch, Event, notice};
use crate::near::{self, Profile};
use crate::store::{ContactRules, StoreError};

/// At most this many contacts are compared per blocking key: a name or an email prefix thousands
/// share (`john.` at a big mail provider) is no evidence, and must not cost a batch its speed.
const PER_KEY: i64 = 50;

/// A contact the batch touched, as the rules see it.
struct Touched {
    id: Uuid,
    profile: Profile,
    /// Its blocking keys it did not have before the batch: only these can find a new candidate.
    keys: BTreeSet<i64>,
    /// The last event of the batch that created or changed it.
    event: usize,
}

/// The stored contacts sharing a blocking key with the batch's, at most [`PER_KEY`] per key.
/// Each step is a look-up by key, written so that the planner cannot choose otherwise: without
/// statistics (a new table, autovacuum off) it estimated one unmerged golden record or a few
/// hundred, and joined by running every key's look-up once per golden record, or by hashing the
/// whole table: seconds per batch. The `LIMIT`s also keep PostgreSQL from flattening the
/// subqueries back into such a join.
pub(super) const CANDIDATES: &str = "SELECT k.key, g.id, k.postcode, g.email, g.first_name, g.last_name, g.company_name \
     FROM unnest($1::int8[]) AS q(key) \
     CROSS JOIN LATERAL (SELECT key, golden_id, postcode FROM contact_near_keys \
         WHERE key = q.key LIMIT $2) k \
     CROSS JOIN LATERAL (SELECT id, email, first_name, last_name, company_name \
         FROM golden_contacts WHERE id = k.golden_id AND merged_into IS NULL LIMIT 1) g";

/// Compares the batch's new and changed contacts with their candidates; queues review notices and
/// the contacts' blocking keys for [`Batch::write`].
pub(super) async fn near_duplicates(
    batch: &mut Batch,
    tx: &Transaction<'_>,
    rules: &ContactRules,
    events: &[Event<'_>],
) -> Result<(), StoreError> {
    if batch.touched.is_empty() {
        return Ok(());
    }
    let mut touched: Vec<Touched> = batch
        .touched
        .iter()
        .filter_map(|(id, index)| {
            let golden = batch.records.get(id)?;
            let mut contact = golden.contact.clone();
            // The golden record keeps no address: the postcode is the touching event's.
            contact.address = events[*index].contact.address.clone();
            let profile = Profile::of(&contact);
            let mut keys = profile.keys();
            if let Some(before) = batch.near_stored.get(id) {
                keys.retain(|k| !before.contains(k));
            }
            // A change of anything but the name, email or company brings no new key: nothing to
            // compare, nothing to store.
            if keys.is_empty() {
                return None;
            }
            Some(Touched {
                id: *id,
                profile,
                keys,
                event: *index,
            })
        })
        .collect();
    touched.sort_by_key(|t| (t.event, t.id));
    for t in &touched {
        for key in &t.keys {
            batch
                .near_keys
                .push((*key, t.id, t.profile.postcode.clone()));
        }
    }
    let wanted: Vec<i64> = touched
        .iter()
        .flat_map(|t| t.keys.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    // Candidates stored before this batch, as they are now (merged ones lead nowhere: their
    // survivor carries their keys' evidence).
    let rows = tx.query(CANDIDATES, &[&wanted, &PER_KEY]).await?;
    let mut candidates: HashMap<Uuid, (Profile, BTreeSet<i64>)> = HashMap::new();
    for row in &rows {
        let id: Uuid = row.get(1);
        let entry = candidates.entry(id).or_insert_with(|| {
            let contact = switchyard_proto::v1::Contact {
                email: row.get(3),
                first_name: row.get(4),
                last_name: row.get(5),
                company_name: row.get(6),
                address: Some(switchyard_proto::v1::Address {
                    postal_code: row.get(2),
                    ..Default::default()
                }),
                ..Default::default()
            };
            (Profile::of(&contact), BTreeSet::new())
        });
        entry.1.insert(row.get(0));
    }
    // The batch's records, as the batch leaves them, are candidates of each other too.
    for t in &touched {
        candidates.insert(t.id, (t.profile.clone(), t.keys.clone()));
    }
    let in_conflict: HashSet<(Uuid, Uuid)> = batch
        .conflicts
        .iter()
        .flat_map(|c| [(c.golden_a, c.golden_b), (c.golden_b, c.golden_a)])
        .collect();
    // Who holds each key, so each contact meets only those it shares a key with.
    let mut holders: HashMap<i64, BTreeSet<Uuid>> = HashMap::new();
    for (id, (_, keys)) in &candidates {
        for key in keys {
            holders.entry(*key).or_default().insert(*id);
        }
    }
    let mut pairs: Vec<(Uuid, Uuid, usize, Vec<String>)> = Vec::new();
    let mut seen = HashSet::new();
    for t in &touched {
        let others: BTreeSet<Uuid> = t
            .keys
            .iter()
            .filter_map(|key| holders.get(key))
            .flatten()
            .copied()
            .collect();
        for other in &others {
            let (profile, _) = &candidates[other];
            if *other == t.id || in_conflict.contains(&(t.id, *other)) {
                continue;
            }
            let pair = if t.id < *other {
                (t.id, *other)
            } else {
                (*other, t.id)
            };
            if !seen.insert(pair) {
                continue;
            }
            if let Some(evidence) = near::review(profile, &t.profile) {
                pairs.push((pair.0, pair.1, t.event, evidence));
            }
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    // A pair is raised once, ever.
    let msg_ids: Vec<String> = pairs
        .iter()
        .map(|(a, b, _, _)| MsgId::review(*a, *b).to_string())
        .collect();
    let raised: HashSet<String> = tx
        .query(
            "SELECT msg_id FROM review_notices WHERE msg_id = ANY($1)",
            &[&msg_ids],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let detected_at = OffsetDateTime::now_utc();
    for ((a, b, index, evidence), msg_id) in pairs.into_iter().zip(msg_ids) {
        if raised.contains(&msg_id) {
            continue;
        }
        tracing::info!(golden_a = %a, golden_b = %b, event_id = %events[index].envelope.event_id,
            "near-duplicate raised for review");
        let mut conflict = notice(
            events[index].envelope,
            "near_duplicate",
            a,
            b,
            "no key in common; probably one person",
            detected_at,
        );
        conflict.evidence = evidence;
        batch.notice(rules, &events[index], msg_id, conflict);
    }
    Ok(())
}
