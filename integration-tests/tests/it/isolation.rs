//! Head-of-line isolation: a destination that hangs past its timeout holds up its own flow only;
//! another flow on the same changes delivers everything meanwhile, and the hung one catches up
//! once its destination answers again.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_integration_tests::{Options, Pipeline, Sink};

#[tokio::test]
async fn a_hung_destination_does_not_slow_another_flow() {
    let slow = Sink::start().await;
    slow.hang(Some(Duration::from_secs(30)));
    let pipeline = Pipeline::start(Options {
        extra_destinations: format!(
            "  - {{ name: slow, kind: webhook, url: \"{}/hooks\", secret_env: SLOW_SECRET, timeout: 1s }}",
            slow.url()
        ),
        extra_flows: "  - { name: to-slow, object: contact, destination: slow, max_attempts: 20, retry_base: 100ms, retry_max: 500ms }".to_owned(),
        extra_env: vec![("SLOW_SECRET".to_owned(), slow.secret().to_owned())],
        ..Options::default()
    })
    .await;
    let total = 20;
    let started = Instant::now();
    for i in 0..total {
        let event = json!({"type": "contact.created", "data": {"id": format!("crm-{i}"), "email": format!("p{i}@example.com")}});
        assert_eq!(pipeline.send(&format!("iso-{i}"), &event).await.0, 200);
    }
    // The healthy flow delivers everything while the other one is stuck on timeouts: with a
    // 1 s timeout, 20 changes queued behind the hung destination alone would take 20 s or more.
    pipeline.sink.wait_for(total, Duration::from_secs(15)).await;
    let healthy = started.elapsed();
    assert!(
        healthy < Duration::from_secs(10),
        "the healthy flow took {healthy:?}"
    );
    assert!(
        slow.received().len() < total,
        "the hung flow is still behind"
    );
    let db = pipeline.db().await;
    let slow_done: i64 = db
        .query_one(
            "SELECT count(*) FROM deliveries WHERE flow = 'to-slow'",
            &[],
        )
        .await
        .expect("deliveries")
        .get(0);
    assert_eq!(
        slow_done, 0,
        "no answer arrived in time, so nothing counts as delivered yet"
    );

    // The destination recovers: the hung flow catches up, each change under its one key.
    slow.hang(None);
    pipeline.wait_drained(Duration::from_secs(60)).await;
    let keys: std::collections::HashSet<_> = slow
        .received()
        .iter()
        .map(|r| r.webhook_id.clone())
        .collect();
    assert_eq!(
        keys.len(),
        total,
        "every change reached the recovered destination"
    );
    assert_eq!(
        pipeline.sink.received().len(),
        total,
        "and the healthy one got each exactly once"
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn a_destination_rate_limit_spaces_the_writes() {
    let limited = Sink::start().await;
    let pipeline = Pipeline::start(Options {
        extra_destinations: format!(
            "  - {{ name: limited, kind: webhook, url: \"{}/hooks\", secret_env: LIMITED_SECRET, rate_per_second: 5, burst: 1 }}",
            limited.url()
        ),
        extra_flows: "  - { name: to-limited, object: contact, destination: limited }".to_owned(),
        extra_env: vec![("LIMITED_SECRET".to_owned(), limited.secret().to_owned())],
        ..Options::default()
    })
    .await;
    let total = 6;
    for i in 0..total {
        let event = json!({"type": "contact.created", "data": {"id": format!("crm-{i}"), "email": format!("r{i}@example.com")}});
        assert_eq!(pipeline.send(&format!("rate-{i}"), &event).await.0, 200);
    }
    limited.wait_for(total, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let received = limited.received();
    assert_eq!(received.len(), total);
    // 5 per second with a bucket of 1: six writes need at least five intervals of 200 ms. (A
    // lower bound only: a busy machine can make it slower, never faster.)
    let span = received[total - 1].at.duration_since(received[0].at);
    assert!(span >= Duration::from_millis(950), "six writes in {span:?}");
    pipeline.finish().await;
}
