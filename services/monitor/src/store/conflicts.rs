//! Identity conflicts and operators' merge commands as monitor keeps them: dedupe's conflict
//! notices and command results from the OPS stream, stored for the admin API, the admin API's
//! wait for its command's result, and a golden record's conflicts and commands for its dashboard
//! page.

use std::time::{Duration, Instant, SystemTime};

use switchyard_chassis::deadpool_postgres::{Client, Pool};

use super::StoreError;
use switchyard_proto::Message as _;
use switchyard_proto::v1::{
    Conflict, IdentityCommandKind, IdentityCommandResult, IdentityConflict,
};

fn kind_label(kind: i32) -> &'static str {
    match IdentityCommandKind::try_from(kind).unwrap_or_default() {
        IdentityCommandKind::Merge => "merge",
        IdentityCommandKind::Unmerge => "unmerge",
        IdentityCommandKind::Unspecified => "unspecified",
    }
}

fn system_time(at: Option<switchyard_proto::Timestamp>) -> Option<SystemTime> {
    at.and_then(|t| SystemTime::try_from(t).ok())
}

/// Keeps a review notice (once per event and pair, however often it is redelivered). A pair an
/// operator already kept apart arrives closed the same way; a conflict that is no pair (a
/// destination's duplicates, `golden_b` empty) always arrives open, as closing one said nothing
/// about the next.
pub(crate) async fn store_conflict(
    pool: &Pool,
    conflict: &IdentityConflict,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let detected_at = system_time(conflict.detected_at).unwrap_or_else(SystemTime::now);
    let kind = if conflict.kind.is_empty() {
        "keys_disagree"
    } else {
        conflict.kind.as_str()
    };
    client
        .execute(
            "INSERT INTO conflicts (event_id, object, golden_a, golden_b, detail, detected_at, kind, evidence, \
                 resolved_at, resolved_by, resolution) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, k.resolved_at, k.resolved_by, k.resolution \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
                 SELECT now() AS resolved_at, resolved_by, resolution FROM conflicts \
                 WHERE $4 <> '' AND resolution = 'kept_apart' \
                   AND ((golden_a = $3 AND golden_b = $4) OR (golden_a = $4 AND golden_b = $3)) \
                 LIMIT 1) k ON true \
             ON CONFLICT (event_id, golden_a, golden_b) DO NOTHING",
            &[
                &conflict.event_id,
                &conflict.object_type,
                &conflict.golden_a,
                &conflict.golden_b,
                &conflict.detail,
                &detected_at,
                &kind,
                &conflict.evidence,
            ],
        )
        .await?;
    Ok(())
}

/// Keeps a command result; an applied merge resolves the open conflicts between its two records.
pub(crate) async fn store_result(
    pool: &Pool,
    result: &IdentityCommandResult,
) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let kind = kind_label(result.kind);
    let applied_at = system_time(result.applied_at);
    let fresh = tx
        .execute(
            "INSERT INTO identity_commands (command_id, kind, object, survivor, merged, applied, error, applied_at, result) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (command_id) DO NOTHING",
            &[
                &result.command_id,
                &kind,
                &result.object,
                &result.survivor,
                &result.merged,
                &result.applied,
                &result.error,
                &applied_at,
                &result.encode_to_vec(),
            ],
        )
        .await?;
    if fresh == 1 && result.applied && kind == "merge" {
        tx.execute(
            "UPDATE conflicts SET resolved_at = coalesce($4, now()), resolved_by = $5 \
             WHERE resolved_at IS NULL AND object = $1 \
             AND ((golden_a = $2 AND golden_b = $3) OR (golden_a = $3 AND golden_b = $2))",
            &[
                &result.object,
                &result.survivor,
                &result.merged,
                &applied_at,
                &result.command_id,
            ],
        )
        .await?;
    }
    Ok(tx.commit().await?)
}

/// Conflicts, newest first: of one object (all when empty), optionally only the open ones.
pub(crate) async fn list_conflicts(
    pool: &Pool,
    filter: &ConflictFilter<'_>,
    limit: i64,
) -> Result<(Vec<Conflict>, u64), StoreError> {
    let client = pool.get().await?;
    let before = i64::try_from(filter.before_id).unwrap_or(i64::MAX);
    // One row more than asked: whether there is a next page.
    let rows = client
        .query(
            &format!(
                "SELECT {CONFLICT_COLUMNS} FROM conflicts \
                 WHERE ($1 = '' OR object = $1) AND (NOT $2 OR resolved_at IS NULL) \
                 AND ($3 = '' OR kind = $3) AND ($4::int8 = 0 OR id < $4::int8) \
                 ORDER BY id DESC LIMIT $5"
            ),
            &[
                &filter.object,
                &filter.open_only,
                &filter.kind,
                &before,
                &(limit + 1),
            ],
        )
        .await?;
    let mut conflicts: Vec<Conflict> = rows.iter().map(conflict_from_row).collect();
    let next = if conflicts.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        conflicts.truncate(usize::try_from(limit).unwrap_or(0));
        conflicts.last().map_or(0, |c| c.id)
    } else {
        0
    };
    Ok((conflicts, next))
}

/// What `ListConflicts` asks for.
pub(crate) struct ConflictFilter<'a> {
    pub object: &'a str,
    pub kind: &'a str,
    pub open_only: bool,
    /// Only ids below this; 0 from the newest.
    pub before_id: u64,
}

const CONFLICT_COLUMNS: &str = "event_id, object, golden_a, golden_b, detail, detected_at, \
    resolved_at, resolved_by, kind, evidence, id";

fn conflict_from_row(r: &tokio_postgres::Row) -> Conflict {
    Conflict {
        event_id: r.get(0),
        object: r.get(1),
        golden_a: r.get(2),
        golden_b: r.get(3),
        detail: r.get(4),
        detected_at: Some(switchyard_proto::timestamp(r.get(5))),
        resolved_at: r
            .get::<_, Option<SystemTime>>(6)
            .map(switchyard_proto::timestamp),
        resolved_by: r.get::<_, Option<String>>(7).unwrap_or_default(),
        kind: r.get(8),
        evidence: r.get(9),
        id: u64::try_from(r.get::<_, i64>(10)).unwrap_or(0),
    }
}

/// Closes a conflict as two different people: it and every open entry of the same pair. `None`
/// when there is no such conflict.
pub(crate) async fn keep_apart(
    pool: &Pool,
    id: u64,
    by: &str,
) -> Result<Option<Conflict>, StoreError> {
    let client = pool.get().await?;
    // Ids come from bigserial: anything past i64 names no row.
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    client
        .execute(
            "UPDATE conflicts c SET resolved_at = now(), resolved_by = $2, resolution = 'kept_apart' \
             FROM conflicts k WHERE k.id = $1 AND c.resolved_at IS NULL \
             AND ((c.golden_a = k.golden_a AND c.golden_b = k.golden_b) \
               OR (c.golden_a = k.golden_b AND c.golden_b = k.golden_a))",
            &[&id, &by],
        )
        .await?;
    let row = client
        .query_opt(
            &format!("SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(conflict_from_row))
}

/// Waits up to `within` for a command's result to be stored (by whichever monitor replica
/// consumed it); `None` when it did not arrive in time.
pub(crate) async fn wait_for_result(
    pool: &Pool,
    command_id: &str,
    within: Duration,
) -> Result<Option<IdentityCommandResult>, StoreError> {
    let deadline = Instant::now() + within;
    // Dedupe usually answers within milliseconds: poll often at first, then back off.
    let mut pause = Duration::from_millis(10);
    loop {
        let row = {
            let client = pool.get().await?;
            client
                .query_opt(
                    "SELECT result FROM identity_commands WHERE command_id = $1",
                    &[&command_id],
                )
                .await?
        };
        if let Some(row) = row {
            let bytes: Vec<u8> = row.get(0);
            return IdentityCommandResult::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A conflict one golden record is part of, as its page shows it.
#[derive(Debug)]
pub(crate) struct GoldenConflict {
    pub event_id: String,
    pub golden_a: String,
    pub golden_b: String,
    pub detail: String,
    pub detected_at: SystemTime,
    pub resolved_by: Option<String>,
}

/// The conflicts golden record `id` of `object` is part of, newest first, 200 at most.
pub(crate) async fn of_golden(
    client: &Client,
    object: &str,
    id: &str,
) -> Result<Vec<GoldenConflict>, StoreError> {
    let rows = client
        .query(
            "SELECT event_id, golden_a, golden_b, detail, detected_at, resolved_by FROM conflicts \
                 WHERE object = $1 AND (golden_a = $2 OR golden_b = $2) ORDER BY detected_at DESC LIMIT 200",
            &[&object, &id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GoldenConflict {
            event_id: r.get(0),
            golden_a: r.get(1),
            golden_b: r.get(2),
            detail: r.get(3),
            detected_at: r.get(4),
            resolved_by: r.get(5),
        })
        .collect())
}

/// A merge or un-merge command that named a golden record, with dedupe's result.
#[derive(Debug)]
pub(crate) struct GoldenCommand {
    pub command_id: String,
    pub kind: String,
    pub survivor: String,
    pub merged: String,
    pub applied: bool,
    pub error: String,
    pub received_at: SystemTime,
}

/// The commands that named golden record `id` of `object`, newest first, 200 at most.
pub(crate) async fn commands_naming(
    client: &Client,
    object: &str,
    id: &str,
) -> Result<Vec<GoldenCommand>, StoreError> {
    let rows = client
        .query(
            "SELECT command_id, kind, survivor, merged, applied, error, received_at FROM identity_commands \
                 WHERE object = $1 AND (survivor = $2 OR merged = $2) ORDER BY received_at DESC LIMIT 200",
            &[&object, &id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GoldenCommand {
            command_id: r.get(0),
            kind: r.get(1),
            survivor: r.get(2),
            merged: r.get(3),
            applied: r.get(4),
            error: r.get(5),
            received_at: r.get(6),
        })
        .collect())
}
