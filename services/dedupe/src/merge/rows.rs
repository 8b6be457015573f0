//! Locks and crosswalk moves shared by contacts and other records.

use std::collections::BTreeSet;

use switchyard_chassis::deadpool_postgres::Transaction;
use uuid::Uuid;

use super::Xref;
use crate::store::StoreError;

/// The locks every command on these two records takes first, so commands on them never interleave.
pub(super) fn ids_locks(object: &str, a: Uuid, b: Uuid) -> Vec<String> {
    vec![
        format!("{object}:golden:{a}"),
        format!("{object}:golden:{b}"),
    ]
}

/// Transaction-scoped advisory locks, in sorted order (as `store` takes them) to avoid cycles.
pub(super) async fn lock(tx: &Transaction<'_>, keys: &[String]) -> Result<(), StoreError> {
    let mut keys = keys.to_vec();
    keys.sort();
    for key in &keys {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[key],
        )
        .await?;
    }
    Ok(())
}

/// Locks every key resolution may find `owners` by (source ids, emails, phones, match keys), the
/// same locks an event holds while it resolves, plus `extra`. A key added while waiting is locked
/// too, until the set stands still (out of order, so in the rare race PostgreSQL may report a
/// deadlock: that transaction fails and is retried like any database error).
pub(super) async fn lock_keys(
    tx: &Transaction<'_>,
    object: &str,
    owners: &[Uuid],
    extra: Vec<String>,
) -> Result<(), StoreError> {
    let mut locked = BTreeSet::new();
    loop {
        let mut keys: BTreeSet<String> = extra.iter().cloned().collect();
        for row in tx
            .query(
                "SELECT object, system, external_id FROM crosswalk WHERE golden_id = ANY($1)",
                &[&owners],
            )
            .await?
        {
            let (object, system, id): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            keys.insert(format!("{object}:xref:{system}:{id}"));
        }
        if object == "contact" {
            for row in tx
                .query(
                    "SELECT email, phone_key FROM golden_contacts WHERE id = ANY($1) OR merged_into = ANY($1)",
                    &[&owners],
                )
                .await?
            {
                let (email, phone): (String, Option<String>) = (row.get(0), row.get(1));
                if !email.is_empty() {
                    keys.insert(format!("contact:email:{email}"));
                }
                if let Some(phone) = phone {
                    keys.insert(format!("contact:phone:{phone}"));
                }
            }
        } else {
            for row in tx
                .query(
                    "SELECT kind, value FROM golden_keys WHERE object = $1 AND golden_id = ANY($2)",
                    &[&object, &owners],
                )
                .await?
            {
                let (kind, value): (String, String) = (row.get(0), row.get(1));
                keys.insert(format!("{object}:{kind}:{value}"));
            }
        }
        let new: Vec<String> = keys.difference(&locked).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        lock(tx, &new).await?;
        locked.extend(new);
    }
}

pub(super) async fn move_crosswalk(
    tx: &Transaction<'_>,
    from: Uuid,
    to: Uuid,
) -> Result<Vec<Xref>, StoreError> {
    let rows = tx
        .query(
            "UPDATE crosswalk SET golden_id = $2 WHERE golden_id = $1 RETURNING system, object, external_id",
            &[&from, &to],
        )
        .await?;
    Ok(xrefs(&rows))
}

/// Moves the rows a merge moved back, where they still point at the survivor.
pub(super) async fn move_crosswalk_back(
    tx: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
    rows: &[Xref],
) -> Result<Vec<Xref>, StoreError> {
    let systems: Vec<&str> = rows.iter().map(|x| x.system.as_str()).collect();
    let objects: Vec<&str> = rows.iter().map(|x| x.object.as_str()).collect();
    let ids: Vec<&str> = rows.iter().map(|x| x.external_id.as_str()).collect();
    let rows = tx
        .query(
            "UPDATE crosswalk c SET golden_id = $2 \
             FROM unnest($3::text[], $4::text[], $5::text[]) AS m(system, object, external_id) \
             WHERE c.system = m.system AND c.object = m.object AND c.external_id = m.external_id \
             AND c.golden_id = $1 RETURNING c.system, c.object, c.external_id",
            &[&survivor, &merged, &systems, &objects, &ids],
        )
        .await?;
    Ok(xrefs(&rows))
}

pub(super) fn xrefs(rows: &[tokio_postgres::Row]) -> Vec<Xref> {
    let mut xrefs: Vec<Xref> = rows
        .iter()
        .map(|row| Xref {
            system: row.get(0),
            object: row.get(1),
            external_id: row.get(2),
        })
        .collect();
    xrefs.sort();
    xrefs
}
