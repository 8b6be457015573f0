//! Identity resolution for contacts through the whole pipeline: phones normalised to E.164 and
//! matched like emails, strangers kept apart, conflicting keys recorded and announced instead of
//! merged, older updates ignored, echoes of our own writes absorbed, and two dedupe replicas
//! racing on the same people still making one golden record each.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt as _;
use prost::Message as _;
use serde_json::{Value, json};
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::{Options, Pipeline, Service};
use switchyard_proto::v1::IdentityConflict;

const WAIT: Duration = Duration::from_secs(30);

/// A `contact.updated` webhook from the `demo` source; an empty `phone` is left out.
fn webhook(external_id: &str, email: &str, phone: &str, timestamp: &str, extra: Value) -> Value {
    let mut data = json!({ "id": external_id, "email": email });
    if let Some(data) = data.as_object_mut() {
        if !phone.is_empty() {
            data.insert("phone".to_owned(), json!(phone));
        }
        if let Some(extra) = extra.as_object() {
            data.extend(extra.clone());
        }
    }
    json!({ "type": "contact.updated", "timestamp": timestamp, "data": data })
}

async fn send_ok(pipeline: &Pipeline, id: &str, body: &Value) {
    let (status, answer) = pipeline.send(id, body).await;
    assert_eq!(status, 200, "{id}: {answer}");
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn outcome_of(db: &tokio_postgres::Client, event_id: &str) -> String {
    db.query_one(
        "SELECT outcome FROM processed_events WHERE event_id = $1",
        &[&event_id],
    )
    .await
    .expect("event processed")
    .get(0)
}

fn dedupe_count(outcome: &str) -> String {
    format!(r#"switchyard_dedupe_events_total{{object="contact",outcome="{outcome}"}}"#)
}

#[tokio::test]
async fn one_phone_written_many_ways_is_one_golden_record_delivered_in_e164() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t0 = "2026-11-27T10:00:00Z";
    send_ok(
        &pipeline,
        "p1",
        &webhook(
            "crm-1",
            "jane@example.com",
            "+1 (201) 555-0123",
            t0,
            json!({"first_name": "Jane"}),
        ),
    )
    .await;
    pipeline.sink.wait_for(1, WAIT).await;
    // Other systems, the same person and the same number in every usual spelling: no change.
    let spellings = [
        "201-555-0123",
        "(201) 555 0123",
        "1 201 555 0123",
        "201.555.0123",
        "+12015550123",
    ];
    for (i, phone) in spellings.iter().enumerate() {
        let body = webhook(
            &format!("sys{i}-1"),
            " JANE@Example.com ",
            phone,
            t0,
            json!({}),
        );
        send_ok(&pipeline, &format!("p-spelling-{i}"), &body).await;
    }
    pipeline.wait_drained(WAIT).await;
    assert_eq!(
        pipeline.sink.received().len(),
        1,
        "the same number spelled differently is not a change"
    );
    // The same phone with an email nobody has: someone else on a shared line (or a changed
    // address). Never merged: a record of its own, and a conflict recorded for review.
    send_ok(
        &pipeline,
        "p-by-phone",
        &webhook(
            "helpdesk-1",
            "jane.doe@work.example",
            "201 555 0123",
            "2026-11-27T11:00:00Z",
            json!({}),
        ),
    )
    .await;
    pipeline.sink.wait_for(2, WAIT).await;
    pipeline.wait_drained(WAIT).await;

    let received = pipeline.sink.received();
    assert_eq!(received.len(), 2);
    let (created, other) = (received[0].json(), received[1].json());
    assert_eq!(created["type"], "contact.created");
    assert_eq!(
        created["data"]["phone"], "+12015550123",
        "delivered in E.164"
    );
    assert_eq!(other["type"], "contact.created");
    assert_ne!(other["data"]["id"], created["data"]["id"], "not merged");
    assert_eq!(other["data"]["email"], "jane.doe@work.example");

    let db = pipeline.db().await;
    assert_eq!(count(&db, "SELECT count(*) FROM golden_contacts").await, 2);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM golden_contacts WHERE phone_key = '+12015550123'"
        )
        .await,
        1,
        "the phone key stays with the first record"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM crosswalk").await,
        7,
        "six source ids on the first record, one on the second"
    );
    for i in 0..spellings.len() {
        assert_eq!(
            outcome_of(&db, &format!("demo:p-spelling-{i}")).await,
            "noop"
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM identity_conflicts").await,
        1
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn different_people_stay_apart_even_with_missing_or_junk_phones() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t0 = "2026-11-27T10:00:00Z";
    // (email, phone): junk numbers shared by two people, no phone at all, and two real numbers
    // one digit apart. None of these may join two people.
    let people = [
        ("ann@example.com", "000-000-0000"),
        ("bob@example.com", "000 000 0000"),
        ("cara@example.com", ""),
        ("dan@example.com", ""),
        ("eve@example.com", "+1 201 555 0199"),
        ("finn@example.com", "201 555 0177"),
    ];
    for (i, (email, phone)) in people.iter().enumerate() {
        let body = webhook(&format!("crm-{i}"), email, phone, t0, json!({}));
        send_ok(&pipeline, &format!("person-{i}"), &body).await;
    }
    pipeline.sink.wait_for(people.len(), WAIT).await;
    pipeline.wait_drained(WAIT).await;

    let received = pipeline.sink.received();
    assert_eq!(received.len(), people.len());
    assert!(
        received
            .iter()
            .all(|r| r.json()["type"] == "contact.created")
    );
    let ids: HashSet<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), people.len(), "one golden record each");

    let db = pipeline.db().await;
    let rows = db
        .query(
            "SELECT email, phone, phone_key FROM golden_contacts ORDER BY email",
            &[],
        )
        .await
        .expect("goldens");
    let stored: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("ann@example.com", "0000000000", None),
        ("bob@example.com", "0000000000", None),
        ("cara@example.com", "", None),
        ("dan@example.com", "", None),
        ("eve@example.com", "+12015550199", Some("+12015550199")),
        ("finn@example.com", "+12015550177", Some("+12015550177")),
    ];
    let expected: Vec<(String, String, Option<String>)> = expected
        .iter()
        .map(|(e, p, k)| ((*e).to_owned(), (*p).to_owned(), k.map(str::to_owned)))
        .collect();
    assert_eq!(
        stored, expected,
        "junk keeps its digits but is no key; no phone is no key"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM identity_conflicts").await,
        0
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn email_and_phone_pointing_at_different_people_is_a_conflict_not_a_merge() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t0 = "2026-11-27T10:00:00Z";
    send_ok(
        &pipeline,
        "a",
        &webhook(
            "crm-a",
            "alice@example.com",
            "+1 212 555 0100",
            t0,
            json!({"first_name": "Alice"}),
        ),
    )
    .await;
    send_ok(
        &pipeline,
        "b",
        &webhook(
            "crm-b",
            "bert@example.com",
            "+44 20 7946 0958",
            t0,
            json!({"first_name": "Bert"}),
        ),
    )
    .await;
    pipeline.sink.wait_for(2, WAIT).await;
    let by_email: HashMap<String, String> = pipeline
        .sink
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["data"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["data"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let (alice, bert) = (
        &by_email["alice@example.com"],
        &by_email["bert@example.com"],
    );

    // Alice's email with Bert's phone, newer than both: which person is it? Nobody decides silently.
    send_ok(
        &pipeline,
        "c",
        &webhook(
            "shop-c",
            "Alice@Example.com",
            "+44 (0)20 7946 0958",
            "2026-11-27T12:00:00Z",
            json!({"first_name": "Alicia"}),
        ),
    )
    .await;
    pipeline.wait_drained(WAIT).await;

    assert_eq!(
        pipeline.sink.received().len(),
        2,
        "nothing merged, nothing delivered"
    );
    let db = pipeline.db().await;
    let conflicts = db
        .query(
            "SELECT event_id, object, golden_a::text, golden_b::text, detail FROM identity_conflicts",
            &[],
        )
        .await
        .expect("conflicts");
    assert_eq!(conflicts.len(), 1);
    let row = &conflicts[0];
    assert_eq!(row.get::<_, String>(0), "demo:c");
    assert_eq!(row.get::<_, String>(1), "contact");
    assert_eq!(
        &row.get::<_, String>(2),
        alice,
        "golden_a: the email's record"
    );
    assert_eq!(
        &row.get::<_, String>(3),
        bert,
        "golden_b: the phone's record"
    );
    let detail: String = row.get(4);
    assert_eq!(
        detail,
        "email matched golden_a, phone matched golden_b; not merged"
    );
    assert!(
        !detail.contains('@') && !detail.contains("7946"),
        "no personal data"
    );

    let goldens = db
        .query(
            "SELECT email, phone, first_name, version FROM golden_contacts ORDER BY email",
            &[],
        )
        .await
        .expect("goldens");
    let goldens: Vec<(String, String, String, i64)> = goldens
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        goldens,
        vec![
            (
                "alice@example.com".to_owned(),
                "+12125550100".to_owned(),
                "Alice".to_owned(),
                1
            ),
            (
                "bert@example.com".to_owned(),
                "+442079460958".to_owned(),
                "Bert".to_owned(),
                1
            ),
        ],
        "both records untouched"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM crosswalk WHERE external_id = 'shop-c'"
        )
        .await,
        0,
        "the ambiguous source id is linked to neither"
    );
    assert_eq!(outcome_of(&db, "demo:c").await, "conflict");

    let conflict_subject = format!("{}.ops.conflict.contact", pipeline.prefix);
    let notices: Vec<_> = pipeline
        .stream_messages(StreamKind::Ops)
        .await
        .into_iter()
        .filter(|m| m.subject.as_str() == conflict_subject)
        .collect();
    assert_eq!(notices.len(), 1, "one OPS notice on {conflict_subject}");
    let notice = IdentityConflict::decode(notices[0].payload.as_ref()).expect("IdentityConflict");
    assert_eq!(notice.event_id, "demo:c");
    assert_eq!(notice.object_type, "contact");
    assert_eq!(&notice.golden_a, alice);
    assert_eq!(&notice.golden_b, bert);
    assert_eq!(notice.detail, detail);
    assert!(notice.detected_at.is_some());
    assert_eq!(
        notices[0]
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned()),
        Some("conflict:demo:c".to_owned()),
        "a republished notice is dropped by JetStream"
    );
    // The published mark is written just after the acknowledgement, off the message path.
    let marked = async {
        loop {
            let published: bool = db
                .query_one(
                    "SELECT published FROM processed_events WHERE event_id = 'demo:c'",
                    &[],
                )
                .await
                .expect("outbox")
                .get(0);
            if published {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        tokio::time::timeout(WAIT, marked).await.is_ok(),
        "the notice left the outbox"
    );
    assert_eq!(
        pipeline
            .metric(Service::Dedupe, &dedupe_count("conflict"))
            .await,
        Some(1.0)
    );
    assert!(pipeline.stream_messages(StreamKind::Dlq).await.is_empty());
    pipeline.finish().await;
}

#[tokio::test]
async fn an_older_update_arriving_late_never_overwrites_newer_values() {
    let pipeline = Pipeline::start(Options::default()).await;
    send_ok(
        &pipeline,
        "new",
        &webhook(
            "crm-7",
            "jo@example.com",
            "",
            "2026-11-27T12:00:00Z",
            json!({"first_name": "Joanna", "job_title": "CTO"}),
        ),
    )
    .await;
    pipeline.sink.wait_for(1, WAIT).await;
    // Written earlier, delivered later: by the same source and by another one.
    for (id, external_id) in [("old-same", "crm-7"), ("old-other", "erp-7")] {
        let body = webhook(
            external_id,
            "jo@example.com",
            "+1 201 555 0199",
            "2026-11-27T11:00:00Z",
            json!({"first_name": "Jo", "job_title": "Intern"}),
        );
        send_ok(&pipeline, id, &body).await;
    }
    pipeline.wait_drained(WAIT).await;
    assert_eq!(
        pipeline.sink.received().len(),
        1,
        "a stale update sends nothing"
    );
    // A newer update still goes through, on top of the newer values.
    send_ok(
        &pipeline,
        "newer",
        &webhook(
            "shop-7",
            "jo@example.com",
            "",
            "2026-11-27T13:00:00Z",
            json!({"last_name": "Smith"}),
        ),
    )
    .await;
    pipeline.sink.wait_for(2, WAIT).await;
    pipeline.wait_drained(WAIT).await;

    let received = pipeline.sink.received();
    assert_eq!(received.len(), 2);
    let updated = received[1].json();
    assert_eq!(updated["data"]["version"], 2);
    assert_eq!(updated["data"]["changed_fields"], json!(["last_name"]));
    assert_eq!(updated["data"]["first_name"], "Joanna");
    assert_eq!(updated["data"]["job_title"], "CTO");
    assert_eq!(
        updated["data"]["phone"], "",
        "the stale phone was not taken either"
    );

    let db = pipeline.db().await;
    assert_eq!(outcome_of(&db, "demo:old-same").await, "stale");
    assert_eq!(outcome_of(&db, "demo:old-other").await, "stale");
    let row = db
        .query_one(
            "SELECT first_name, job_title, phone_key, version FROM golden_contacts",
            &[],
        )
        .await
        .expect("golden");
    assert_eq!(row.get::<_, String>(0), "Joanna");
    assert_eq!(row.get::<_, String>(1), "CTO");
    assert_eq!(
        row.get::<_, Option<String>>(2),
        None,
        "no key from a stale phone"
    );
    assert_eq!(row.get::<_, i64>(3), 2);
    assert_eq!(
        pipeline
            .metric(Service::Dedupe, &dedupe_count("stale"))
            .await,
        Some(2.0)
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn the_echo_of_our_own_write_ends_the_loop_after_one_round() {
    let pipeline = Pipeline::start(Options::default()).await;
    send_ok(
        &pipeline,
        "origin",
        &webhook(
            "crm-echo",
            "Echo.Person@Example.com",
            "(201) 555-0142",
            "2026-11-27T10:00:00Z",
            json!({"first_name": "Echo", "last_name": "Person", "company": "Acme", "marketing_consent": true}),
        ),
    )
    .await;
    pipeline.sink.wait_for(1, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let delivered = pipeline.sink.received()[0].json();
    assert_eq!(delivered["data"]["phone"], "+12015550142");

    // The destination fires its own webhook back with exactly what we wrote (its id for the record
    // is ours, so it is a new source id): nothing new may go out.
    send_ok(&pipeline, "echo-of-origin", &delivered).await;
    pipeline.wait_drained(WAIT).await;

    assert_eq!(
        pipeline.sink.received().len(),
        1,
        "the loop ends after one round"
    );
    assert_eq!(
        pipeline.stream_messages(StreamKind::Golden).await.len(),
        1,
        "no golden change for the echo"
    );
    let db = pipeline.db().await;
    assert_eq!(outcome_of(&db, "demo:echo-of-origin").await, "noop");
    assert_eq!(count(&db, "SELECT count(*) FROM golden_contacts").await, 1);
    assert_eq!(
        count(&db, "SELECT max(version) FROM golden_contacts").await,
        1
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn two_dedupe_replicas_racing_on_the_same_people_make_one_golden_record_each() {
    let mut pipeline = Pipeline::start(Options::default()).await;
    pipeline.start_extra_dedupe().await;
    // Many people with few events each: every person's first events are a fresh chance for two
    // replicas to try to create the same record at once.
    let people: u32 = 20;
    let per_person: u32 = 6;
    // Each event comes with its own webhook id and source id, and spells the person's email and
    // phone its own way: only the normalised keys (and their locks) can join them. The newest
    // event (the last j) holds the values that must survive.
    let mut events = Vec::new();
    for i in 0..people {
        let line = format!("01{i:02}");
        let phones = [
            format!("+1 (201) 555-{line}"),
            format!("201-555-{line}"),
            format!("(201) 555 {line}"),
            format!("1 201 555 {line}"),
            format!("201.555.{line}"),
            format!("+1201555{line}"),
        ];
        for j in 0..per_person {
            let email = [
                format!(" Person{i}@Example.com "),
                format!("PERSON{i}@EXAMPLE.COM"),
                format!("person{i}@example.com"),
            ][j as usize % 3]
                .clone();
            let body = webhook(
                &format!("ext-{i}-{j}"),
                &email,
                &phones[j as usize % phones.len()],
                &format!("2026-11-27T10:00:{j:02}Z"),
                json!({"first_name": format!("Person {i}"), "job_title": format!("v{j}")}),
            );
            events.push((format!("burst-{i}-{j}"), body));
        }
    }
    let answers = futures::stream::iter(&events)
        .map(|(id, body)| pipeline.send(id, body))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let db = pipeline.db().await;
    let rows = db
        .query(
            "SELECT id::text, email, phone_key, job_title FROM golden_contacts ORDER BY phone_key",
            &[],
        )
        .await
        .expect("goldens");
    let goldens: Vec<(String, String, Option<String>, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        goldens.len(),
        people as usize,
        "one golden record per person: {goldens:?}"
    );
    for (i, (_, email, phone_key, job_title)) in goldens.iter().enumerate() {
        assert_eq!(
            phone_key.as_deref(),
            Some(format!("+120155501{i:02}").as_str())
        );
        assert_eq!(
            email,
            &format!("person{i}@example.com"),
            "one normalised email"
        );
        assert_eq!(
            job_title,
            &format!("v{}", per_person - 1),
            "the newest event's values won"
        );
    }
    let per_golden = db
        .query(
            "SELECT golden_id::text, count(*) FROM crosswalk GROUP BY golden_id",
            &[],
        )
        .await
        .expect("crosswalk");
    let ids: HashSet<&String> = goldens.iter().map(|g| &g.0).collect();
    assert_eq!(per_golden.len(), people as usize);
    for row in &per_golden {
        assert!(ids.contains(&row.get::<_, String>(0)));
        assert_eq!(
            row.get::<_, i64>(1),
            i64::from(per_person),
            "every source id linked"
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM identity_conflicts").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM processed_events").await,
        i64::from(people * per_person)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM processed_events WHERE outcome = 'created'"
        )
        .await,
        i64::from(people)
    );
    // The locks serialise per person, so no insert ever trips the unique indexes and retries.
    for outcome in ["failed", "conflict"] {
        let main = pipeline
            .metric(Service::Dedupe, &dedupe_count(outcome))
            .await
            .unwrap_or(0.0);
        let extra = pipeline
            .extra_dedupe_metric(0, &dedupe_count(outcome))
            .await
            .unwrap_or(0.0);
        assert_eq!(main + extra, 0.0, "{outcome}");
    }
    assert!(pipeline.stream_messages(StreamKind::Dlq).await.is_empty());
    let created = pipeline
        .sink
        .received()
        .iter()
        .filter(|r| r.json()["type"] == "contact.created")
        .count();
    assert_eq!(created, people as usize, "one contact.created per person");
    pipeline.finish().await;
}
