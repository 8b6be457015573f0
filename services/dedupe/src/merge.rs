//! Operator identity commands from the admin API: merge one golden record into another, and undo
//! such a merge. Each command is applied once per command id, in one transaction, and its golden
//! changes and its result leave through the same outbox as everything else dedupe publishes.
//!
//! A merge moves the merged record's source ids (and, for objects other than contacts, its match
//! keys) to the survivor, fills the survivor's empty fields from it (never overwriting), and keeps
//! the merged record pointing at the survivor (`merged_into`), so its remaining keys lead there.
//! What moved and what was filled is recorded, so an un-merge moves exactly that back.

use prost::Message as _;
use serde::{Deserialize, Serialize};
use switchyard_chassis::bus::Names;
use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use switchyard_proto::v1::{
    CanonicalObject, ChangeKind, Envelope, ExternalRef, GoldenChange, IdentityCommand,
    IdentityCommandKind, IdentityCommandResult, canonical_object::Object,
};
use time::OffsetDateTime;
use uuid::Uuid;

use switchyard_chassis::ids::{ChangeId, MsgId};

use crate::store::{Pending, StoreError};

mod contacts;
mod objects;
mod outbox;
mod rows;

use outbox::{outbox, record, seen_before};
use rows::{ids_locks, lock, lock_keys};

/// The objects dedupe keeps golden records of.
const OBJECTS: [&str; 7] = [
    "contact", "lead", "company", "product", "deal", "order", "invoice",
];

/// The metric label of a command's object (`unknown` for anything dedupe keeps no records of).
pub fn object_label(object: &str) -> &'static str {
    OBJECTS
        .into_iter()
        .find(|known| *known == object)
        .unwrap_or("unknown")
}

/// Whether a command id can key the outbox rows of its command: monitor sends UUIDs; anything
/// with a `:` could pass for another command's rows.
pub fn valid_command_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What applying one command did.
#[derive(Debug)]
pub struct Applied {
    /// `merged`, `unmerged`, `refused`, or `duplicate` (the command was applied before).
    pub outcome: &'static str,
    /// The golden changes, then the result, to publish in that order (for a duplicate: whatever
    /// of them was not published yet).
    pub pending: Vec<Pending>,
}

/// Why a command was not applied.
enum Failure {
    /// The command cannot be applied as asked; its result says why. Every refusal is decided
    /// before anything is written, so its transaction records the refusal and nothing else.
    Refused(String),
    /// The database failed; the command is retried.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Store(error.into())
    }
}

fn refuse<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Refused(reason.into()))
}

/// A crosswalk row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Xref {
    system: String,
    object: String,
    external_id: String,
}

/// A match key: a `golden_keys` row, or for a contact its `email` or `phone` (E.164) key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Key {
    kind: String,
    value: String,
}

/// Exactly what a merge moved to the survivor (or an un-merge moved back).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Moved {
    crosswalk: Vec<Xref>,
    keys: Vec<Key>,
    /// Records merged earlier into the merged one: they now point at the survivor.
    merged_records: Vec<Uuid>,
}

/// A command's effect, before it is recorded.
struct Done {
    outcome: &'static str,
    object: &'static str,
    survivor: Uuid,
    merged: Uuid,
    merge_command_id: String,
    moved: Moved,
    /// Merge: the survivor's fields filled. Un-merge: the survivor's fields emptied again.
    filled: Vec<String>,
    changes: Vec<GoldenChange>,
}

/// Applies one command, atomically, and leaves its messages in the outbox.
pub async fn apply(
    pool: &Pool,
    names: &Names,
    command: &IdentityCommand,
) -> Result<Applied, StoreError> {
    let event_id = MsgId::Command {
        command_id: &command.command_id,
    }
    .to_string();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(pending) = seen_before(&tx, &event_id).await? {
        tx.commit().await?;
        return Ok(Applied {
            outcome: "duplicate",
            pending,
        });
    }
    let at = OffsetDateTime::now_utc();
    let kind = IdentityCommandKind::try_from(command.kind).unwrap_or_default();
    let cause = Envelope {
        event_id: event_id.clone(),
        source_system: "admin".to_owned(),
        source_kind: "admin".to_owned(),
        occurred_at: Some(timestamp(at)),
        received_at: Some(timestamp(at)),
        event_type: match kind {
            IdentityCommandKind::Unmerge => "identity.unmerge",
            _ => "identity.merge",
        }
        .to_owned(),
        ..Default::default()
    };
    let mut result = IdentityCommandResult {
        command_id: command.command_id.clone(),
        object: command.object.clone(),
        survivor: command.survivor.clone(),
        merged: command.merged.clone(),
        kind: command.kind,
        merge_command_id: command.merge_command_id.clone(),
        ..Default::default()
    };
    let done = match kind {
        IdentityCommandKind::Merge => merge(&tx, command, &cause).await,
        IdentityCommandKind::Unmerge => match find_merge(&tx, command).await {
            Ok(found) => {
                // Known from here on, refused or not: the result names the merge it is about.
                result.object = found.object.to_owned();
                result.survivor = found.survivor.to_string();
                result.merged = found.merged.to_string();
                result.merge_command_id.clone_from(&found.merge_id);
                unmerge(&tx, found, &cause).await
            }
            Err(failure) => Err(failure),
        },
        IdentityCommandKind::Unspecified => {
            refuse("the command is neither a merge nor an un-merge")
        }
    };
    let mut pending = Vec::new();
    let outcome = match done {
        Ok(done) => {
            for change in &done.changes {
                let change_pending = Pending {
                    event_id: format!("{event_id}:{}", change.golden_id),
                    subject: names.golden(&change.object_type),
                    msg_id: change
                        .change_id
                        .parse::<ChangeId>()
                        .map(|id| MsgId::Golden(id).to_string())
                        .unwrap_or_else(|_| format!("golden:{}", change.change_id)),
                    payload: change.encode_to_vec(),
                };
                let golden_id = Uuid::parse_str(&change.golden_id).ok();
                outbox(
                    &tx,
                    "updated",
                    golden_id,
                    Some(change.version),
                    &change_pending,
                )
                .await?;
                pending.push(change_pending);
            }
            record(&tx, command, &done, at).await?;
            tracing::info!(
                command_id = %command.command_id,
                object = done.object,
                survivor = %done.survivor,
                merged = %done.merged,
                outcome = done.outcome,
                "identity command applied"
            );
            result.object = done.object.to_owned();
            result.survivor = done.survivor.to_string();
            result.merged = done.merged.to_string();
            result.applied = true;
            result.applied_at = Some(timestamp(at));
            result.merge_command_id = done.merge_command_id;
            result.filled_fields = done.filled;
            result.moved_refs = done
                .moved
                .crosswalk
                .into_iter()
                .map(|x| ExternalRef {
                    system: x.system,
                    object: x.object,
                    id: x.external_id,
                })
                .collect();
            done.outcome
        }
        Err(Failure::Refused(reason)) => {
            tracing::info!(command_id = %command.command_id, %reason, "identity command refused");
            result.error = reason;
            "refused"
        }
        Err(Failure::Store(error)) => return Err(error),
    };
    let result_pending = Pending {
        event_id: event_id.clone(),
        subject: names.identity_command_result(&result.object),
        msg_id: MsgId::CommandResult {
            command_id: &command.command_id,
        }
        .to_string(),
        payload: result.encode_to_vec(),
    };
    let survivor = Uuid::parse_str(&result.survivor).ok();
    outbox(&tx, outcome, survivor, None, &result_pending).await?;
    pending.push(result_pending);
    tx.commit().await?;
    Ok(Applied { outcome, pending })
}

/// Merges `command.merged` into `command.survivor`.
async fn merge(
    tx: &Transaction<'_>,
    command: &IdentityCommand,
    cause: &Envelope,
) -> Result<Done, Failure> {
    let object = known_object(&command.object)?;
    let survivor = golden_id(&command.survivor, "survivor")?;
    let merged = golden_id(&command.merged, "merged")?;
    if survivor == merged {
        return refuse(format!("cannot merge {object} {survivor} into itself"));
    }
    // Commands on the same records are serialised by their ids: nothing else takes these locks.
    lock(tx, &ids_locks(object, survivor, merged)).await?;
    if let Some(into) = merged_into(tx, object, survivor, "survivor").await? {
        return refuse(format!(
            "survivor {survivor} is merged into {into}; merge into that record instead"
        ));
    }
    if let Some(into) = merged_into(tx, object, merged, "merged").await? {
        return refuse(format!("{object} {merged} is already merged into {into}"));
    }
    // Events resolving through the merged record's keys wait until the merge is committed, and
    // then find the survivor.
    lock_keys(tx, object, &[merged], Vec::new()).await?;
    let (moved, filled, changes) = if object == "contact" {
        contacts::merge(tx, survivor, merged, cause).await?
    } else {
        objects::merge(tx, object, survivor, merged, cause).await?
    };
    // The operator has decided these two are one: their open conflicts are resolved.
    tx.execute(
        "UPDATE identity_conflicts SET resolved_at = now() WHERE resolved_at IS NULL \
         AND ((golden_a = $1 AND golden_b = $2) OR (golden_a = $2 AND golden_b = $1))",
        &[&survivor, &merged],
    )
    .await?;
    Ok(Done {
        outcome: "merged",
        object,
        survivor,
        merged,
        merge_command_id: command.command_id.clone(),
        moved,
        filled,
        changes,
    })
}

type Merged = (Moved, Vec<String>, Vec<GoldenChange>);

/// A merge as `identity_merges` recorded it.
struct Recorded {
    merge_id: String,
    object: &'static str,
    survivor: Uuid,
    merged: Uuid,
    moved: Moved,
    filled: Vec<String>,
}

/// The merge an un-merge is about: named by its command id, or the merge of `merged` into
/// `survivor` in force.
async fn find_merge(tx: &Transaction<'_>, command: &IdentityCommand) -> Result<Recorded, Failure> {
    const COLUMNS: &str = "command_id, object, survivor, merged, moved, filled";
    let row = if command.merge_command_id.is_empty() {
        let object = known_object(&command.object)?;
        let survivor = golden_id(&command.survivor, "survivor")?;
        let merged = golden_id(&command.merged, "merged")?;
        tx.query_opt(
            &format!(
                "SELECT {COLUMNS} FROM identity_merges WHERE kind = 'merge' AND undone_at IS NULL \
                 AND object = $1 AND survivor = $2 AND merged = $3"
            ),
            &[&object, &survivor, &merged],
        )
        .await?
        .ok_or_else(|| {
            Failure::Refused(format!(
                "no merge of {object} {merged} into {survivor} is in force"
            ))
        })?
    } else {
        tx.query_opt(
            &format!(
                "SELECT {COLUMNS} FROM identity_merges WHERE kind = 'merge' AND command_id = $1"
            ),
            &[&command.merge_command_id],
        )
        .await?
        .ok_or_else(|| Failure::Refused(format!("no merge {}", command.merge_command_id)))?
    };
    let merge_id: String = row.get(0);
    let Ok(moved) = serde_json::from_value::<Moved>(row.get(4)) else {
        return refuse(format!(
            "merge {merge_id} is recorded in a form this version cannot read"
        ));
    };
    Ok(Recorded {
        object: known_object(row.get(1))?,
        survivor: row.get(2),
        merged: row.get(3),
        moved,
        filled: serde_json::from_value(row.get(5)).unwrap_or_default(),
        merge_id,
    })
}

/// Undoes a recorded merge.
async fn unmerge(tx: &Transaction<'_>, found: Recorded, cause: &Envelope) -> Result<Done, Failure> {
    let Recorded {
        merge_id,
        object,
        survivor,
        merged,
        moved,
        filled,
    } = found;
    lock(tx, &ids_locks(object, survivor, merged)).await?;
    // Read again under the lock: another un-merge of the same merge may just have committed.
    let undone_by: Option<String> = tx
        .query_one(
            "SELECT undone_by FROM identity_merges WHERE command_id = $1",
            &[&merge_id],
        )
        .await?
        .get(0);
    if let Some(by) = undone_by {
        return refuse(format!("merge {merge_id} was already undone by {by}"));
    }
    // What this merge moved to the survivor moved on with it when the survivor itself was merged.
    if let Some(later) = tx
        .query_opt(
            "SELECT command_id, survivor FROM identity_merges \
             WHERE kind = 'merge' AND undone_at IS NULL AND merged = $1",
            &[&survivor],
        )
        .await?
    {
        let (later_id, into): (String, Uuid) = (later.get(0), later.get(1));
        return refuse(format!(
            "survivor {survivor} was merged into {into} since (merge {later_id}); undo that merge first"
        ));
    }
    let mut extra: Vec<String> = moved
        .crosswalk
        .iter()
        .map(|x| format!("{}:xref:{}:{}", x.object, x.system, x.external_id))
        .collect();
    extra.extend(
        moved
            .keys
            .iter()
            .map(|k| format!("{object}:{}:{}", k.kind, k.value)),
    );
    let mut owners = vec![merged];
    owners.extend(&moved.merged_records);
    lock_keys(tx, object, &owners, extra).await?;
    let (back, cleared, changes) = if object == "contact" {
        contacts::unmerge(tx, survivor, merged, &moved, &filled, cause).await?
    } else {
        objects::unmerge(tx, object, survivor, merged, &moved, &filled, cause).await?
    };
    Ok(Done {
        outcome: "unmerged",
        object,
        survivor,
        merged,
        merge_command_id: merge_id,
        moved: back,
        filled: cleared,
        changes,
    })
}

fn golden_change(
    object: &str,
    id: Uuid,
    version: i64,
    changed_fields: Vec<String>,
    record: Object,
    external_refs: Vec<ExternalRef>,
    cause: &Envelope,
) -> GoldenChange {
    GoldenChange {
        change_id: ChangeId {
            golden: id,
            version,
        }
        .to_string(),
        golden_id: id.to_string(),
        object_type: object.to_owned(),
        kind: ChangeKind::Updated.into(),
        version,
        changed_fields,
        cause: Some(cause.clone()),
        record: Some(CanonicalObject {
            envelope: Some(cause.clone()),
            object: Some(record),
        }),
        external_refs,
        // A merge resolves no references anew; the records' own changes carry them.
        related: Vec::new(),
    }
}

fn known_object(object: &str) -> Result<&'static str, Failure> {
    match object_label(object) {
        "unknown" => refuse(format!("dedupe keeps no golden records of {object:?}")),
        known => Ok(known),
    }
}

fn golden_id(id: &str, role: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(id.trim()).or_else(|_| {
        refuse(format!(
            "the {role} record {id:?} is not a golden record id"
        ))
    })
}

/// The record's `merged_into`; refused when there is no such golden record of this object.
async fn merged_into(
    tx: &Transaction<'_>,
    object: &str,
    id: Uuid,
    role: &str,
) -> Result<Option<Uuid>, Failure> {
    let contact = tx
        .query_opt(
            "SELECT merged_into FROM golden_contacts WHERE id = $1",
            &[&id],
        )
        .await?;
    let record = tx
        .query_opt(
            "SELECT object, merged_into FROM golden_records WHERE id = $1",
            &[&id],
        )
        .await?;
    match (contact, record) {
        (Some(row), _) if object == "contact" => Ok(row.get(0)),
        (_, Some(row)) if row.get::<_, String>(0) == object => Ok(row.get(1)),
        (Some(_), _) => refuse(format!(
            "the {role} record {id} is a contact, not a {object}"
        )),
        (_, Some(row)) => refuse(format!(
            "the {role} record {id} is a {}, not a {object}",
            row.get::<_, String>(0)
        )),
        (None, None) => refuse(format!("unknown {role} record: no golden {object} {id}")),
    }
}

fn timestamp(at: OffsetDateTime) -> switchyard_proto::Timestamp {
    switchyard_proto::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_cannot_pass_for_another_commands_rows() {
        assert!(valid_command_id("0193a0c4-5f7e-7cc1-9d1e-3b2f4a5b6c7d"));
        assert!(!valid_command_id(""));
        assert!(!valid_command_id("abc:golden:1"));
        assert_eq!(object_label("company"), "company");
        assert_eq!(object_label("widget"), "unknown");
    }
}
