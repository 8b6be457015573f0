//! Deliver's own crosswalk of destination ids: which record a destination created for a golden
//! record (and for each source id of it), so later changes update that record instead of
//! creating another, and documents find the customer their source id points at.

use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::ExternalRef;

use crate::webhook::SendError;

/// The ids one destination gave records.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pool: Pool,
    destination: String,
}

/// The key of a golden record.
pub(crate) fn golden_key(object: &str, golden_id: &str) -> String {
    format!("golden:{object}:{golden_id}")
}

/// The key of a record's id in a source system.
pub(crate) fn ref_key(reference: &ExternalRef) -> String {
    format!(
        "ref:{}:{}:{}",
        reference.system, reference.object, reference.id
    )
}

impl Ids {
    pub fn new(pool: Pool, destination: &str) -> Self {
        Self {
            pool,
            destination: destination.to_owned(),
        }
    }

    /// The vendor id kept under the first of `keys` that has one.
    pub async fn find(&self, keys: &[String]) -> Result<Option<String>, SendError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let db = self.pool.get().await.map_err(unavailable)?;
        let row = db
            .query_opt(
                "SELECT vendor_id FROM destination_ids WHERE destination = $1 AND key = ANY($2) \
                 ORDER BY array_position($2, key) LIMIT 1",
                &[&self.destination, &keys],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Keeps `vendor_id` under every key; the first id kept for a key stays (a concurrent
    /// writer's record is the one later changes update).
    pub async fn keep(&self, keys: &[String], vendor_id: &str) -> Result<(), SendError> {
        let db = self.pool.get().await.map_err(unavailable)?;
        db.execute(
            "INSERT INTO destination_ids (destination, key, vendor_id) \
             SELECT $1, k, $3 FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
            &[&self.destination, &keys, &vendor_id],
        )
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

/// The write may have happened; the retry repeats it with the same idempotency key, or finds
/// the id kept.
fn unavailable(error: impl std::fmt::Display) -> SendError {
    SendError::Retryable {
        status: None,
        retry_after: None,
        reason: format!("deliver database unavailable: {error}"),
    }
}
