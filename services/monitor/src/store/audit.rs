//! The audit log of the admin API's operator actions (`audit_log`): an entry written before the
//! action is taken, its outcome added once known, and the newest entries for `ListAudit`. (The
//! `destination.write` entries are written with the recorder's batch, in `reports`.)

use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::AuditEntry;

use super::StoreError;

/// Writes an entry.
pub(crate) async fn record(
    pool: &Pool,
    role: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO audit_log (role, action, target, detail) VALUES ($1, $2, $3, $4)",
            &[&role, &action, &target, &detail],
        )
        .await?;
    Ok(())
}

/// Writes an entry and answers its id, so the outcome can be added once known.
pub(crate) async fn record_started(
    pool: &Pool,
    role: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<i64, StoreError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO audit_log (role, action, target, detail) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
            &[&role, &action, &target, &detail],
        )
        .await?;
    Ok(row.get(0))
}

/// Replaces an entry's detail (with the outcome of its action).
pub(crate) async fn set_detail(pool: &Pool, id: i64, detail: &str) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE audit_log SET detail = $2 WHERE id = $1",
            &[&id, &detail],
        )
        .await?;
    Ok(())
}

/// The newest entries, newest first.
pub(crate) async fn list(pool: &Pool, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT at, role, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            at: Some(switchyard_proto::timestamp(r.get::<_, SystemTime>(0))),
            role: r.get(1),
            action: r.get(2),
            target: r.get(3),
            detail: r.get(4),
        })
        .collect())
}
