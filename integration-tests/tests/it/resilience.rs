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

/// Dedupe committed a change and died before publishing it: the change waits in its outbox, the
/// unacknowledged canonical message comes back, and the restarted service publishes the change
/// then — delivered once, not lost.
#[tokio::test]
async fn a_change_committed_but_not_published_is_delivered_after_restart() {
    use prost::Message as _;
    use switchyard_chassis::config::DatabaseConfig;
    use switchyard_dedupe::store::{self, ContactRules, Outcome};
    use switchyard_proto::v1::{CanonicalObject, Contact, Envelope, canonical_object};

    let mut pipeline = Pipeline::start(Options::default()).await;
    pipeline.stop_service(Service::Dedupe).await;
    let pool = switchyard_chassis::db::connect(&DatabaseConfig {
        url: pipeline.database_url.clone().into(),
        pool_size: std::num::NonZeroUsize::new(1).expect("non-zero"),
        ca_file: None,
    })
    .await
    .expect("pool");
    let now = switchyard_proto::timestamp(std::time::SystemTime::now());
    let envelope = Envelope {
        event_id: "demo:outbox-1".to_owned(),
        source_system: "demo".to_owned(),
        source_kind: "standard-webhooks".to_owned(),
        source_object_id: "crm-1".to_owned(),
        occurred_at: Some(now),
        received_at: Some(now),
        contract_version: "contact/v1".to_owned(),
        event_type: "contact.created".to_owned(),
    };
    let contact = Contact {
        email: "outbox@example.com".to_owned(),
        ..Default::default()
    };
    let rules = ContactRules {
        golden_subject: format!("{}.golden.contact", pipeline.prefix),
        conflict_subject: format!("{}.ops.conflict.contact", pipeline.prefix),
        default_region: "US".parse().expect("region"),
        write_rules: Default::default(),
    };
    // The state and the outbox row commit together; nothing is published (the "crash").
    let resolutions =
        store::resolve_contacts(&pool, &rules, &[(envelope.clone(), contact.clone())])
            .await
            .expect("resolved");
    assert_eq!(resolutions[0].outcome, Outcome::Created);
    assert!(
        resolutions[0].pending.is_some(),
        "the change waits in the outbox"
    );

    // The canonical message was never acknowledged, so JetStream hands it over again.
    let object = CanonicalObject {
        envelope: Some(envelope),
        object: Some(canonical_object::Object::Contact(contact)),
    };
    let client = switchyard_chassis::async_nats::connect(&pipeline.nats_url)
        .await
        .expect("nats");
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    let mut headers = switchyard_chassis::async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "canonical:demo:outbox-1");
    js.publish_with_headers(
        format!("{}.canonical.contact.demo", pipeline.prefix),
        headers,
        object.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");

    pipeline.start_service(Service::Dedupe).await;
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let received = pipeline.sink.received();
    assert_eq!(received.len(), 1, "delivered once");
    assert_eq!(received[0].json()["data"]["email"], "outbox@example.com");
    let db = pipeline.db().await;
    let published: bool = db
        .query_one(
            "SELECT published FROM processed_events WHERE event_id = 'demo:outbox-1'",
            &[],
        )
        .await
        .expect("outbox row")
        .get(0);
    assert!(published, "the outbox entry is marked published");
    let golden: i64 = db
        .query_one("SELECT count(*) FROM golden_contacts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(golden, 1, "the redelivery did not apply the event twice");
    pipeline.finish().await;
}
