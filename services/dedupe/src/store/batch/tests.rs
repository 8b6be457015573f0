//! The batch resolution against real PostgreSQL: a batch ends exactly as its events one at a time.

use std::collections::HashMap;

use prost::Message as _;
use switchyard_proto::v1::{GoldenChange, IdentityConflict};

use super::*;
use crate::store::testing::{database, event, rules};

/// Everything resolution wrote, with golden ids replaced by the record's first name (random
/// ids differ between two databases; the names are unique in the scenario).
async fn transcript(pool: &Pool) -> Vec<String> {
    let db = pool.get().await.expect("connection");
    let names: HashMap<Uuid, String> = db
        .query("SELECT id, first_name FROM golden_contacts", &[])
        .await
        .expect("names")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let name = |id: Option<Uuid>| id.map_or("-".to_owned(), |id| names[&id].clone());
    let rename = |text: &str| {
        names
            .iter()
            .fold(text.to_owned(), |t, (id, n)| t.replace(&id.to_string(), n))
    };
    let mut lines = Vec::new();
    for r in db
        .query(
            "SELECT first_name, email, phone, phone_key, job_title, version, source_updated_at::text, merged_into \
             FROM golden_contacts ORDER BY first_name",
            &[],
        )
        .await
        .expect("goldens")
    {
        let (n, e, p, j, at): (String, String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(4), r.get(6));
        let (k, v): (Option<String>, i64) = (r.get(3), r.get(5));
        let merged = name(r.get(7));
        lines.push(format!("golden {n} {e} {p} {k:?} {j} v{v} {at} into {merged}"));
    }
    for r in db
        .query(
            "SELECT system, object, external_id, golden_id FROM crosswalk ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .expect("crosswalk")
    {
        let (s, o, x): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        lines.push(format!("xref {s}:{o}:{x} -> {}", name(r.get(3))));
    }
    for r in db
        .query(
            "SELECT event_id, golden_a, golden_b, detail FROM identity_conflicts ORDER BY id",
            &[],
        )
        .await
        .expect("conflicts")
    {
        let e: String = r.get(0);
        let d: String = r.get(3);
        lines.push(format!(
            "conflict {e} {} {} {d}",
            name(r.get(1)),
            name(r.get(2))
        ));
    }
    for r in db
        .query(
            "SELECT event_id, outcome, golden_id, change_subject, change_msg_id, change_payload \
             FROM processed_events ORDER BY event_id",
            &[],
        )
        .await
        .expect("outbox")
    {
        let (e, o, s, m): (String, String, Option<String>, Option<String>) =
            (r.get(0), r.get(1), r.get(3), r.get(4));
        let payload: Option<Vec<u8>> = r.get(5);
        let body = match (s.as_deref(), payload) {
            (Some("t.golden.contact"), Some(p)) => {
                format!("{:?}", GoldenChange::decode(p.as_slice()).expect("change"))
            }
            (Some(_), Some(p)) => {
                let mut c = IdentityConflict::decode(p.as_slice()).expect("notice");
                c.detected_at = None;
                format!("{c:?}")
            }
            _ => String::new(),
        };
        lines.push(rename(&format!(
            "outcome {e} {o} {} {s:?} {m:?} {body}",
            name(r.get(2))
        )));
    }
    lines
}

/// Two events of one new person, a conflicting event, a phone shared by a newcomer, a stale
/// update, a repeated event, a no-op, and an email given up then taken by someone else — all
/// in one batch — end exactly as they do one event at a time.
#[tokio::test]
async fn one_batch_dedupes_exactly_as_sequential_processing() {
    let rules = rules();
    let events = |list: &[(&str, &str, &str, &str, &str, i64)]| {
        list.iter()
            .map(|&(id, source, email, phone, name, at)| event(id, source, email, phone, name, at))
            .collect::<Vec<_>>()
    };
    #[rustfmt::skip]
    let before = events(&[
        ("s1", "crm:a", "alice@example.com", "+1 212 555 0100", "Alice", 100),
        ("s2", "crm:b", "bert@example.com", "+44 20 7946 0958", "Bert", 100),
        ("s3", "crm:z", "zed@example.com", "+1 212 555 0177", "Zed", 100),
    ]);
    #[rustfmt::skip]
    let mut batch = events(&[
        // A new person, then the same person again from another source id, by email.
        ("e1", "shop:c1", " Carol@Example.com ", "+1 212 555 0199", "Carol", 200),
        ("e2", "shop:c2", "carol@example.com", "", "Carol", 210),
        // Alice's email with Bert's phone: a conflict, nothing merged.
        ("e3", "web:x", "alice@example.com", "+44 (0)20 7946 0958", "Alicia", 300),
        // Carol's phone (created in this batch) with another email: kept apart.
        ("e4", "web:d", "dan@example.com", "212-555-0199", "Dan", 220),
        // Older than what e1 wrote.
        ("e5", "shop:c1", "carol@example.com", "", "Caroline", 150),
        // e1 again.
        ("e1", "shop:c1", "carol@example.com", "+1 212 555 0199", "Carol", 200),
        // Nothing new.
        ("e7", "crm:a", "alice@example.com", "", "Alice", 100),
        // Bert's source id moves him to a new email; someone else then takes the old one.
        ("e8", "crm:b", "bert.new@example.com", "", "Bert", 400),
        ("e9", "web:e", "bert@example.com", "", "Eve", 410),
        // Zed was merged into Alice: his email and phone are aliases that lead to her.
        ("e10", "web:z1", "zed@example.com", "", "", 500),
        ("e11", "web:z2", "", "+1 212 555 0177", "Alice", 510),
    ]);
    batch[1].1.job_title = "CTO".to_owned();
    batch[9].1.job_title = "Engineer".to_owned();

    let (one_by_one, one_by_one_url) = database().await;
    let (together, together_url) = database().await;
    for pool in [&one_by_one, &together] {
        for e in &before {
            resolve_contacts(pool, &rules, std::slice::from_ref(e))
                .await
                .expect("seeded");
        }
        // What an operator's merge of Zed into Alice leaves behind (merge.rs).
        pool.get()
            .await
            .expect("connection")
            .execute(
                "UPDATE golden_contacts SET merged_into = \
                 (SELECT id FROM golden_contacts WHERE first_name = 'Alice') \
                 WHERE first_name = 'Zed'",
                &[],
            )
            .await
            .expect("merged");
    }
    let mut sequential = Vec::new();
    for e in &batch {
        let r = resolve_contacts(&one_by_one, &rules, std::slice::from_ref(e))
            .await
            .expect("resolved alone");
        sequential.push(r[0].outcome);
    }
    let batched: Vec<Outcome> = resolve_contacts(&together, &rules, &batch)
        .await
        .expect("resolved together")
        .iter()
        .map(|r| r.outcome)
        .collect();

    use Outcome::*;
    assert_eq!(
        batched,
        [
            Created, Updated, Conflict, Created, Stale, Duplicate, NoOp, Updated, Created, Updated,
            NoOp
        ]
    );
    assert_eq!(batched, sequential);
    let (batched, sequential) = (transcript(&together).await, transcript(&one_by_one).await);
    assert_eq!(batched, sequential);
    let carol: Vec<&String> = batched
        .iter()
        .filter(|l| l.starts_with("golden Carol"))
        .collect();
    assert_eq!(carol.len(), 1, "one record for Carol: {batched:#?}");
    assert!(carol[0].contains(" CTO v2 "), "{}", carol[0]);
    assert!(
        batched
            .iter()
            .any(|l| l.starts_with("conflict e3 Alice Bert source id")
                || l.starts_with("conflict e3 Alice Bert email")),
        "{batched:#?}"
    );
    assert!(
        batched
            .iter()
            .any(|l| l.starts_with("conflict e4 Carol Dan phone matched")),
        "{batched:#?}"
    );
    drop((one_by_one, together));
    for url in [one_by_one_url, together_url] {
        switchyard_chassis::testkit::drop_database(&url).await;
    }
}

/// The near-duplicate candidates are found by key look-ups whatever the statistics: in a new
/// database that was never analysed (autovacuum off, or not yet run), with thousands of golden
/// records, the plan neither scans `golden_contacts` nor hashes it. Planned otherwise, a batch's
/// look-up took seconds at a few hundred records (the end-to-end bench's first seconds).
#[tokio::test]
async fn near_duplicate_candidates_are_key_look_ups_without_statistics() {
    let (pool, _url) = database().await;
    let db = pool.get().await.expect("connection");
    db.batch_execute(
        "INSERT INTO golden_contacts (id, email, source_updated_at, version) \
         SELECT md5(i::text)::uuid, 'person' || i || '@example.com', now(), 1 \
         FROM generate_series(1, 3000) i; \
         INSERT INTO contact_near_keys (key, golden_id) \
         SELECT i, md5((i / 8)::text)::uuid FROM generate_series(8, 24007) i;",
    )
    .await
    .expect("seeded");
    let wanted: Vec<i64> = (0..2048).map(|i| i * 11).collect();
    let plan: Vec<String> = db
        .query(
            &format!("EXPLAIN {}", review::CANDIDATES),
            &[&wanted, &50_i64],
        )
        .await
        .expect("explained")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("golden_contacts_pkey") && plan.contains("contact_near_keys_pkey"),
        "both tables read by their keys:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan") && !plan.contains("Hash"),
        "no table scanned or hashed:\n{plan}"
    );
    // And the look-up finds what it should: key 22 belongs to record 2, key 11 to record 1.
    let rows = db
        .query(review::CANDIDATES, &[&vec![11_i64, 22], &50_i64])
        .await
        .expect("candidates");
    let mut found: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(3))).collect();
    found.sort();
    assert_eq!(
        found,
        [
            (11, "person1@example.com".to_owned()),
            (22, "person2@example.com".to_owned())
        ]
    );
}
