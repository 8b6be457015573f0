//! Merge and un-merge of golden records of every object but contacts (`golden_records`): their
//! match keys are `golden_keys` rows, so they move with the source ids.

use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_proto::v1::{Envelope, canonical_object::Object};
use uuid::Uuid;

use super::rows::{move_crosswalk, move_crosswalk_back};
use super::{Failure, Key, Merged, Moved, golden_change, refuse};
use crate::{records, store};

pub(super) async fn merge(
    tx: &Transaction<'_>,
    object: &'static str,
    survivor: Uuid,
    merged: Uuid,
    cause: &Envelope,
) -> Result<Merged, Failure> {
    let (mut record, version) = load_record(tx, survivor).await?;
    let (other, _) = load_record(tx, merged).await?;
    let mut moved = Moved {
        crosswalk: move_crosswalk(tx, merged, survivor).await?,
        ..Default::default()
    };
    let rows = tx
        .query(
            "UPDATE golden_keys SET golden_id = $1 WHERE golden_id = $2 RETURNING kind, value",
            &[&survivor, &merged],
        )
        .await?;
    moved.keys = rows
        .iter()
        .map(|row| Key {
            kind: row.get(0),
            value: row.get(1),
        })
        .collect();
    moved.keys.sort();
    let rows = tx
        .query(
            "UPDATE golden_records SET merged_into = $1 WHERE merged_into = $2 RETURNING id",
            &[&survivor, &merged],
        )
        .await?;
    moved.merged_records = rows.iter().map(|row| row.get(0)).collect();
    tx.execute(
        "UPDATE golden_records SET merged_into = $2, updated_at = now() WHERE id = $1",
        &[&merged, &survivor],
    )
    .await?;
    let filled = records::merge(&mut record, &other, &|_| false);
    tx.execute(
        "UPDATE golden_records SET record = $2, version = $3, updated_at = now() WHERE id = $1",
        &[&survivor, &records::encode(&record), &(version + 1)],
    )
    .await?;
    let change = golden_change(
        object,
        survivor,
        version + 1,
        filled.clone(),
        record,
        store::external_refs(tx, survivor).await?,
        cause,
    );
    Ok((moved, filled, vec![change]))
}

pub(super) async fn unmerge(
    tx: &Transaction<'_>,
    object: &'static str,
    survivor: Uuid,
    merged: Uuid,
    moved: &Moved,
    filled: &[String],
    cause: &Envelope,
) -> Result<Merged, Failure> {
    let (mut record, version) = load_record(tx, survivor).await?;
    let (other, other_version) = load_record(tx, merged).await?;
    let mut back = Moved {
        crosswalk: move_crosswalk_back(tx, survivor, merged, &moved.crosswalk).await?,
        ..Default::default()
    };
    let (kinds, values): (Vec<&str>, Vec<&str>) = moved
        .keys
        .iter()
        .map(|k| (k.kind.as_str(), k.value.as_str()))
        .unzip();
    let rows = tx
        .query(
            "UPDATE golden_keys k SET golden_id = $2 FROM unnest($3::text[], $4::text[]) AS m(kind, value) \
             WHERE k.object = $5 AND k.kind = m.kind AND k.value = m.value AND k.golden_id = $1 \
             RETURNING k.kind, k.value",
            &[&survivor, &merged, &kinds, &values, &object],
        )
        .await?;
    back.keys = rows
        .iter()
        .map(|row| Key {
            kind: row.get(0),
            value: row.get(1),
        })
        .collect();
    back.keys.sort();
    let rows = tx
        .query(
            "UPDATE golden_records SET merged_into = $2 WHERE merged_into = $1 AND id = ANY($3) RETURNING id",
            &[&survivor, &merged, &moved.merged_records],
        )
        .await?;
    back.merged_records = rows.iter().map(|row| row.get(0)).collect();
    let cleared = records::unfill(&mut record, &other, filled);
    tx.execute(
        "UPDATE golden_records SET record = $2, version = $3, updated_at = now() WHERE id = $1",
        &[&survivor, &records::encode(&record), &(version + 1)],
    )
    .await?;
    tx.execute(
        "UPDATE golden_records SET merged_into = NULL, version = $2, updated_at = now() WHERE id = $1",
        &[&merged, &(other_version + 1)],
    )
    .await?;
    let changes = vec![
        golden_change(
            object,
            survivor,
            version + 1,
            cleared.clone(),
            record,
            store::external_refs(tx, survivor).await?,
            cause,
        ),
        golden_change(
            object,
            merged,
            other_version + 1,
            Vec::new(),
            other,
            store::external_refs(tx, merged).await?,
            cause,
        ),
    ];
    Ok((back, cleared, changes))
}

async fn load_record(tx: &Transaction<'_>, id: Uuid) -> Result<(Object, i64), Failure> {
    let row = tx
        .query_one(
            "SELECT record, version FROM golden_records WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    match records::decode(row.get(0)) {
        Some(record) => Ok((record, row.get(1))),
        None => refuse(format!("the stored record {id} cannot be read")),
    }
}
