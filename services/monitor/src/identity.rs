//! Identity conflicts and operators' merge commands as monitor keeps them: dedupe's conflict
//! notices and command results from the OPS stream, stored for the admin API, and the admin API's
//! wait for its command's result.

use std::time::{Duration, Instant, SystemTime};

use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::Message as _;
use switchyard_proto::v1::{
    Conflict, IdentityCommandKind, IdentityCommandResult, IdentityConflict,
};

/// Storing failed (the database); the message is retried.
pub(crate) type StoreError = String;

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

/// Keeps a conflict notice (once per source event, however often it is redelivered).
pub(crate) async fn store_conflict(
    pool: &Pool,
    conflict: &IdentityConflict,
) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let detected_at = system_time(conflict.detected_at).unwrap_or_else(SystemTime::now);
    client
        .execute(
            "INSERT INTO conflicts (event_id, object, golden_a, golden_b, detail, detected_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
            &[
                &conflict.event_id,
                &conflict.object_type,
                &conflict.golden_a,
                &conflict.golden_b,
                &conflict.detail,
                &detected_at,
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Keeps a command result; an applied merge resolves the open conflicts between its two records.
pub(crate) async fn store_result(
    pool: &Pool,
    result: &IdentityCommandResult,
) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
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
        .await
        .map_err(|e| e.to_string())?;
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
        .await
        .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

/// Conflicts, newest first: of one object (all when empty), optionally only the open ones.
pub(crate) async fn list_conflicts(
    pool: &Pool,
    object: &str,
    open_only: bool,
    limit: i64,
) -> Result<Vec<Conflict>, StoreError> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "SELECT event_id, object, golden_a, golden_b, detail, detected_at, resolved_at, resolved_by \
             FROM conflicts WHERE ($1 = '' OR object = $1) AND (NOT $2 OR resolved_at IS NULL) \
             ORDER BY detected_at DESC, event_id LIMIT $3",
            &[&object, &open_only, &limit],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| Conflict {
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
        })
        .collect())
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
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .query_opt(
                    "SELECT result FROM identity_commands WHERE command_id = $1",
                    &[&command_id],
                )
                .await
                .map_err(|e| e.to_string())?
        };
        if let Some(row) = row {
            let bytes: Vec<u8> = row.get(0);
            return IdentityCommandResult::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| e.to_string());
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
