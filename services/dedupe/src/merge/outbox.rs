//! A command's rows: its outbox entries in `processed_events` (the result keyed
//! `command:<command id>`, each golden change `command:<command id>:<golden id>`), and the
//! applied command in `identity_merges`.

use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_proto::v1::IdentityCommand;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Done;
use crate::store::{Pending, StoreError};

/// For a command applied before, the messages of its outbox not yet published (changes first,
/// the result last); `None` for a new command.
pub(super) async fn seen_before(
    tx: &Transaction<'_>,
    event_id: &str,
) -> Result<Option<Vec<Pending>>, StoreError> {
    let rows = tx
        .query(
            "SELECT event_id, change_subject, change_msg_id, change_payload, published \
             FROM processed_events WHERE event_id = $1 OR starts_with(event_id, $1 || ':') \
             ORDER BY event_id = $1, event_id",
            &[&event_id],
        )
        .await?;
    if !rows.iter().any(|row| row.get::<_, String>(0) == event_id) {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter(|row| !row.get::<_, bool>(4))
            .filter_map(|row| {
                Some(Pending {
                    event_id: row.get(0),
                    subject: row.get::<_, Option<String>>(1)?,
                    msg_id: row.get::<_, Option<String>>(2)?,
                    payload: row.get::<_, Option<Vec<u8>>>(3)?,
                })
            })
            .collect(),
    ))
}

pub(super) async fn outbox(
    tx: &Transaction<'_>,
    outcome: &str,
    golden_id: Option<Uuid>,
    version: Option<i64>,
    pending: &Pending,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO processed_events (event_id, outcome, golden_id, change_subject, change_msg_id, change_payload, version, source_system) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'admin')",
        &[
            &pending.event_id,
            &outcome,
            &golden_id,
            &pending.subject,
            &pending.msg_id,
            &pending.payload,
            &version,
        ],
    )
    .await?;
    Ok(())
}

/// Keeps the applied command in `identity_merges`; an un-merge also marks its merge undone.
pub(super) async fn record(
    tx: &Transaction<'_>,
    command: &IdentityCommand,
    done: &Done,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let kind = if done.outcome == "unmerged" {
        "unmerge"
    } else {
        "merge"
    };
    let moved = serde_json::to_value(&done.moved).unwrap_or_default();
    let filled = serde_json::to_value(&done.filled).unwrap_or_default();
    tx.execute(
        "INSERT INTO identity_merges (command_id, object, survivor, merged, kind, actor, reason, moved, filled, applied_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &command.command_id,
            &done.object,
            &done.survivor,
            &done.merged,
            &kind,
            &command.actor,
            &command.reason,
            &moved,
            &filled,
            &at,
        ],
    )
    .await?;
    if kind == "unmerge" {
        tx.execute(
            "UPDATE identity_merges SET undone_at = $2, undone_by = $3 WHERE command_id = $1",
            &[&done.merge_command_id, &at, &command.command_id],
        )
        .await?;
    }
    Ok(())
}
