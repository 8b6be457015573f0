//! Services killed mid-stream and restarted: nothing lost, nothing delivered twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use switchyard_integration_tests::{Options, Pipeline, Service};

#[tokio::test]
async fn services_aborted_mid_stream_lose_nothing_and_deliver_nothing_twice() {
    let mut pipeline = Pipeline::start(Options::default()).await;
    let total = 120;
    for i in 0..total / 2 {
        let body = json!({ "type": "contact.created", "data": { "id": format!("crm-{i}"), "email": format!("p{i}@example.com") } });
        assert_eq!(pipeline.send(&format!("m{i}"), &body).await.0, 200);
    }
    // Let the stream get going, then kill the three workers wherever they are.
    pipeline.sink.wait_for(5, Duration::from_secs(30)).await;
    for service in [Service::Transform, Service::Dedupe, Service::Deliver] {
        pipeline.abort_service(service).await;
    }
    // Webhooks keep arriving while they are down.
    for i in total / 2..total {
        let body = json!({ "type": "contact.created", "data": { "id": format!("crm-{i}"), "email": format!("p{i}@example.com") } });
        assert_eq!(pipeline.send(&format!("m{i}"), &body).await.0, 200);
    }
    for service in [Service::Transform, Service::Dedupe, Service::Deliver] {
        pipeline.start_service(service).await;
    }
    pipeline.sink.wait_for(total, Duration::from_secs(90)).await;
    pipeline.wait_drained(Duration::from_secs(90)).await;

    let received = pipeline.sink.received();
    // Each change carries one idempotency key; a receiver keyed on it sees each person once.
    let mut by_key: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
    for r in &received {
        by_key
            .entry(r.webhook_id.clone())
            .or_default()
            .insert(r.body.clone());
    }
    assert_eq!(
        by_key.len(),
        total,
        "every accepted event delivered, under exactly one key"
    );
    assert!(
        by_key.values().all(|bodies| bodies.len() == 1),
        "a repeated key always carries the same body"
    );
    let emails: HashSet<String> = received
        .iter()
        .map(|r| {
            r.json()["data"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(emails.len(), total, "no one lost");
    let db = pipeline.db().await;
    let golden: i64 = db
        .query_one("SELECT count(*) FROM golden_contacts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(golden, i64::try_from(total).unwrap_or(0), "no one doubled");
    let versions: i64 = db
        .query_one(
            "SELECT count(*) FROM golden_contacts WHERE version <> 1",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(versions, 0, "a redelivered event is not applied twice");
    let delivered_rows: i64 = db
        .query_one("SELECT count(*) FROM deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(delivered_rows, i64::try_from(total).unwrap_or(0));
    pipeline.finish().await;
}
