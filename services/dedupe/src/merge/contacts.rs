//! Merge and un-merge of golden contacts (`golden_contacts`). A contact's email and phone keys
//! live on its row, one holder each: the survivor takes a key it lacks; the keys the merged
//! record keeps lead to the survivor through its `merged_into`.

use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_proto::v1::{Contact, Envelope, canonical_object::Object};
use uuid::Uuid;

use super::rows::{move_crosswalk, move_crosswalk_back};
use super::{Failure, Key, Merged, Moved, golden_change};
use crate::store::{self, Golden};

pub(super) async fn merge(
    tx: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
    cause: &Envelope,
) -> Result<Merged, Failure> {
    let a = store::load_for_update(tx, survivor).await?;
    let b = store::load_for_update(tx, merged).await?;
    let mut moved = Moved {
        crosswalk: move_crosswalk(tx, merged, survivor).await?,
        ..Default::default()
    };
    let rows = tx
        .query(
            "UPDATE golden_contacts SET merged_into = $1 WHERE merged_into = $2 RETURNING id",
            &[&survivor, &merged],
        )
        .await?;
    moved.merged_records = rows.iter().map(|row| row.get(0)).collect();
    // A key has one holder (unique indexes): the survivor takes the email or phone key it lacks
    // from the merged record; the keys the merged record keeps lead to the survivor through it.
    let take_email = a.contact.email.is_empty() && !b.contact.email.is_empty();
    let take_phone = a.contact.phone.is_empty() && b.phone_key.is_some();
    if take_email {
        moved.keys.push(Key {
            kind: "email".to_owned(),
            value: b.contact.email.clone(),
        });
    }
    if let (true, Some(key)) = (take_phone, &b.phone_key) {
        moved.keys.push(Key {
            kind: "phone".to_owned(),
            value: key.clone(),
        });
    }
    tx.execute(
        "UPDATE golden_contacts SET merged_into = $2, \
         email = CASE WHEN $3 THEN '' ELSE email END, \
         phone_key = CASE WHEN $4 THEN NULL ELSE phone_key END, updated_at = now() \
         WHERE id = $1",
        &[&merged, &survivor, &take_email, &take_phone],
    )
    .await?;
    // Fill, never overwrite: nobody may overwrite, anyone may fill a gap.
    let (contact, filled) = store::merge(&a.contact, &b.contact, &|_| false);
    let golden = Golden {
        id: survivor,
        contact,
        phone_key: if take_phone {
            b.phone_key.clone()
        } else {
            a.phone_key.clone()
        },
        phone_certainty: if take_phone {
            b.phone_certainty
        } else {
            a.phone_certainty
        },
        source_updated_at: a.source_updated_at,
        version: a.version + 1,
    };
    store::update_golden(tx, &golden).await?;
    let change = golden_change(
        "contact",
        survivor,
        golden.version,
        filled.clone(),
        Object::Contact(golden.contact),
        store::external_refs(tx, survivor).await?,
        cause,
    );
    Ok((moved, filled, vec![change]))
}

pub(super) async fn unmerge(
    tx: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
    moved: &Moved,
    filled: &[String],
    cause: &Envelope,
) -> Result<Merged, Failure> {
    let a = store::load_for_update(tx, survivor).await?;
    let b = store::load_for_update(tx, merged).await?;
    let mut back = Moved {
        crosswalk: move_crosswalk_back(tx, survivor, merged, &moved.crosswalk).await?,
        ..Default::default()
    };
    let rows = tx
        .query(
            "UPDATE golden_contacts SET merged_into = $2 WHERE merged_into = $1 AND id = ANY($3) RETURNING id",
            &[&survivor, &merged, &moved.merged_records],
        )
        .await?;
    back.merged_records = rows.iter().map(|row| row.get(0)).collect();
    let given = |kind: &str| {
        moved
            .keys
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| k.value.clone())
    };
    // The merged record as it was before the merge, with the email it gave up.
    let mut before = b.contact.clone();
    if let Some(email) = given("email") {
        before.email = email;
    }
    let mut contact = a.contact.clone();
    let cleared = unfill_contact(&mut contact, &before, filled);
    let golden = Golden {
        id: survivor,
        contact,
        // The key follows the phone: gone with it, or the survivor's own since.
        phone_key: if cleared.iter().any(|f| f == "phone") {
            None
        } else {
            a.phone_key.clone()
        },
        phone_certainty: if cleared.iter().any(|f| f == "phone") {
            None
        } else {
            a.phone_certainty
        },
        source_updated_at: a.source_updated_at,
        version: a.version + 1,
    };
    store::update_golden(tx, &golden).await?;
    // The merged record takes its keys back, unless another record holds one by now.
    if let Some(email) = given("email") {
        let n = tx
            .execute(
                "UPDATE golden_contacts SET email = $2 WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM golden_contacts WHERE email = $2)",
                &[&merged, &email],
            )
            .await?;
        if n == 1 {
            back.keys.push(Key {
                kind: "email".to_owned(),
                value: email,
            });
        }
    }
    if let Some(key) = given("phone") {
        let n = tx
            .execute(
                "UPDATE golden_contacts SET phone_key = $2 WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM golden_contacts WHERE phone_key = $2)",
                &[&merged, &key],
            )
            .await?;
        if n == 1 {
            back.keys.push(Key {
                kind: "phone".to_owned(),
                value: key,
            });
        }
    }
    tx.execute(
        "UPDATE golden_contacts SET merged_into = NULL, version = version + 1, updated_at = now() WHERE id = $1",
        &[&merged],
    )
    .await?;
    let restored = store::load_for_update(tx, merged).await?;
    let changes = vec![
        golden_change(
            "contact",
            survivor,
            golden.version,
            cleared.clone(),
            Object::Contact(golden.contact),
            store::external_refs(tx, survivor).await?,
            cause,
        ),
        golden_change(
            "contact",
            merged,
            restored.version,
            Vec::new(),
            Object::Contact(restored.contact),
            store::external_refs(tx, merged).await?,
            cause,
        ),
    ];
    Ok((back, cleared, changes))
}

/// Empties each field named in `filled` whose value is still `merged`'s (see `records::unfill`).
fn unfill_contact(survivor: &mut Contact, merged: &Contact, filled: &[String]) -> Vec<String> {
    let was_filled = |name: &str| filled.iter().any(|f| f == name);
    let mut cleared = Vec::new();
    let fields: [(&str, &mut String, &String); 7] = [
        ("email", &mut survivor.email, &merged.email),
        ("phone", &mut survivor.phone, &merged.phone),
        ("first_name", &mut survivor.first_name, &merged.first_name),
        ("last_name", &mut survivor.last_name, &merged.last_name),
        (
            "company_name",
            &mut survivor.company_name,
            &merged.company_name,
        ),
        ("job_title", &mut survivor.job_title, &merged.job_title),
        (
            "lifecycle_stage",
            &mut survivor.lifecycle_stage,
            &merged.lifecycle_stage,
        ),
    ];
    for (name, current, value) in fields {
        if was_filled(name) && !current.is_empty() && current == value {
            current.clear();
            cleared.push(name.to_owned());
        }
    }
    if was_filled("consent") && survivor.consent.is_some() && survivor.consent == merged.consent {
        survivor.consent = None;
        cleared.push("consent".to_owned());
    }
    cleared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmerge_empties_only_what_the_merge_filled_and_nobody_changed_since() {
        let survivor = Contact {
            email: "x@example.com".into(),
            first_name: "Xavier".into(),
            ..Default::default()
        };
        let merged = Contact {
            email: "y@example.com".into(),
            first_name: "Yves".into(),
            job_title: "CTO".into(),
            company_name: "Example".into(),
            ..Default::default()
        };
        let (mut contact, filled) = store::merge(&survivor, &merged, &|_| false);
        assert_eq!(filled, ["company_name", "job_title"], "gaps only");
        contact.company_name = "Example Holdings".into();
        let cleared = unfill_contact(&mut contact, &merged, &filled);
        assert_eq!(cleared, ["job_title"]);
        assert_eq!(
            contact.company_name, "Example Holdings",
            "changed since: kept"
        );
        assert_eq!(contact.first_name, "Xavier");
    }
}
