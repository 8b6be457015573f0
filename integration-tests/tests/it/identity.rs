//! Unique events arrive once; the same person typed twice is one golden record; no-ops send nothing.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use switchyard_integration_tests::{Options, Pipeline};

fn contact(id: &str, email: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut data = json!({ "id": id, "email": email });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    json!({ "type": "contact.updated", "data": data })
}

#[tokio::test]
async fn every_unique_event_reaches_the_sink_exactly_once_signed() {
    let pipeline = Pipeline::start(Options::default()).await;
    let events: Vec<(String, serde_json::Value)> = (0..200)
        .map(|i| {
            (
                format!("msg_{i}"),
                contact(
                    &format!("crm-{i}"),
                    &format!("person{i}@example.com"),
                    json!({"name": format!("Person {i}")}),
                ),
            )
        })
        .collect();

    let first = futures::stream::iter(&events)
        .map(|(id, body)| pipeline.send(id, body))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert!(
        first
            .iter()
            .all(|(status, json)| *status == 200 && json["duplicate"] == false),
        "{first:?}"
    );
    // The sender retries 40 of them with the same webhook-id.
    let resent = futures::stream::iter(&events[..40])
        .map(|(id, body)| pipeline.send(id, body))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert!(
        resent
            .iter()
            .all(|(status, json)| *status == 200 && json["duplicate"] == true),
        "{resent:?}"
    );

    pipeline.sink.wait_for(200, Duration::from_secs(60)).await;
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let received = pipeline.sink.received();
    assert_eq!(
        received.len(),
        200,
        "one request per unique event, none for the repeats"
    );
    let ids: HashSet<_> = received.iter().map(|r| r.webhook_id.clone()).collect();
    assert_eq!(ids.len(), 200);
    let emails: HashSet<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: HashSet<String> = (0..200).map(|i| format!("person{i}@example.com")).collect();
    assert_eq!(emails, expected);
    assert!(
        received.iter().all(|r| pipeline.sink.verify(r)),
        "every outbound signature verifies"
    );
    assert!(
        received
            .iter()
            .all(|r| r.json()["type"] == "contact.created")
    );

    let db = pipeline.db().await;
    let golden: i64 = db
        .query_one("SELECT count(*) FROM golden_contacts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(golden, 200);
    assert_eq!(pipeline.flow_count("received").await, Some(200.0));
    assert_eq!(pipeline.flow_count("delivered").await, Some(200.0));
    assert_eq!(pipeline.flow_count("dead_lettered").await, Some(0.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn the_same_person_typed_twice_is_one_golden_record_and_a_no_op_sends_nothing() {
    let pipeline = Pipeline::start(Options::default()).await;
    let (status, _) = pipeline
        .send("a", &contact("crm-1", "  Jane.Doe@Example.COM ", json!({"first_name": "Jane", "last_name": "Doe", "timestamp": "2026-11-27T10:00:00Z"})))
        .await;
    assert_eq!(status, 200);
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    // Another system, a differently formatted email, a new phone and a corrected first name.
    let (status, _) = pipeline
        .send(
            "b",
            &contact(
                "shop-9",
                "jane.doe@example.com",
                json!({"first_name": "Janet", "phone": "+44 20 7946 0958"}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    pipeline.sink.wait_for(2, Duration::from_secs(30)).await;
    // The same facts again (e.g. the echo of our own write): nothing to deliver.
    let (status, _) = pipeline
        .send(
            "c",
            &contact(
                "shop-9",
                "JANE.DOE@example.com",
                json!({"first_name": "Janet", "phone": "+44 20 7946 0958"}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let received = pipeline.sink.received();
    assert_eq!(
        received.len(),
        2,
        "a created and an updated, nothing for the no-op"
    );
    let (created, updated) = (received[0].json(), received[1].json());
    assert_eq!(created["type"], "contact.created");
    assert_eq!(updated["type"], "contact.updated");
    assert_eq!(
        created["data"]["id"], updated["data"]["id"],
        "the same golden record"
    );
    assert_eq!(updated["data"]["version"], 2);
    assert_eq!(
        updated["data"]["changed_fields"],
        json!(["phone", "first_name"])
    );
    assert_eq!(updated["data"]["email"], "jane.doe@example.com");

    let db = pipeline.db().await;
    let golden: i64 = db
        .query_one("SELECT count(*) FROM golden_contacts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(golden, 1);
    let xrefs: i64 = db
        .query_one("SELECT count(*) FROM crosswalk", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(xrefs, 2, "both systems' ids point at the one record");
    let outcome: String = db
        .query_one(
            "SELECT outcome FROM processed_events WHERE event_id = 'demo:c'",
            &[],
        )
        .await
        .expect("processed")
        .get(0);
    assert_eq!(outcome, "noop");
    pipeline.finish().await;
}
