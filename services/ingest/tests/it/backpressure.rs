//! How ingest answers when the pipeline cannot take more: 503 while the bus is unreachable, 429
//! with `Retry-After` while a backlog (transform's or a deliver consumer's) is past the bound.

use std::time::Duration;

use switchyard_chassis::async_nats;
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_chassis::testkit;

use crate::harness::{Ingest, raw_messages, start, start_with};

#[tokio::test]
async fn answers_503_when_the_bus_is_unreachable_and_does_not_count_it_accepted() {
    let mut nats = testkit::PrivateNats::start()
        .await
        .expect("private nats-server");
    let ingest = start(&nats.url, "1s").await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;
    let (status, _) = ingest
        .post("demo", &ingest.signed("before", body), body)
        .await;
    assert_eq!(status, 200, "accepted while the bus is up");

    nats.kill();
    let started = std::time::Instant::now();
    let (status, json) = ingest
        .post("demo", &ingest.signed("after", body), body)
        .await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"]["code"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the sender is not kept waiting"
    );

    let accepted = r#"switchyard_ingest_webhooks_total{source="demo",outcome="accepted"}"#;
    let unavailable = r#"switchyard_ingest_webhooks_total{source="demo",outcome="unavailable"}"#;
    assert_eq!(ingest.metric(accepted).await, Some(1));
    assert_eq!(ingest.metric(unavailable).await, Some(1));
    let ready = reqwest::get(format!("{}/readyz", ingest.ops))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503, "not ready without the bus");
    ingest.stop(&nats.url).await;
}

#[tokio::test]
async fn a_backlog_past_the_bound_answers_429_with_retry_after() {
    let nats = testkit::nats_url();
    let ingest = start_with(&format!("nats: {{ url: \"{nats}\" }}"), "", &[]).await;
    // Transform's consumer exists but nothing consumes it: the backlog only grows.
    let client = async_nats::connect(&nats).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let names = Names::new(&ingest.prefix);
    let stream = js
        .get_stream(names.stream(StreamKind::Raw))
        .await
        .expect("RAW");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(names.consumer("transform")),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let refused = loop {
        assert!(std::time::Instant::now() < deadline, "never answered 429");
        i += 1;
        let body = format!(r#"{{"type":"contact.created","data":{{"id":"{i}"}}}}"#);
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/demo", ingest.base))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in ingest.signed(&format!("b{i}"), body.as_bytes()) {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("answer");
        if response.status().as_u16() == 429 {
            break response;
        }
        assert_eq!(response.status().as_u16(), 200);
        // Let the backlog watcher take its next reading.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (stored, _) = raw_messages(&nats, &ingest.prefix).await;
    assert!(
        stored > 2,
        "refused only past the bound of 2 (stored {stored})"
    );
    let overloaded = r#"switchyard_ingest_webhooks_total{source="demo",outcome="overloaded"}"#;
    assert_eq!(ingest.metric(overloaded).await, Some(1));
    ingest.stop(&nats).await;
}

/// Posts signed webhooks (`<tag>1`, `<tag>2`, …) until one is answered `wanted`, within 15 s;
/// every other answer must be `otherwise`. Returns the wanted response.
async fn post_until(ingest: &Ingest, tag: &str, wanted: u16, otherwise: u16) -> reqwest::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for i in 1.. {
        assert!(
            std::time::Instant::now() < deadline,
            "never answered {wanted}"
        );
        let body = format!(r#"{{"type":"contact.created","data":{{"id":"{tag}{i}"}}}}"#);
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/demo", ingest.base))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in ingest.signed(&format!("{tag}{i}"), body.as_bytes()) {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("answer");
        if response.status().as_u16() == wanted {
            return response;
        }
        assert_eq!(response.status().as_u16(), otherwise);
        // The backlog watcher measures twice a second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_lagging_deliver_consumer_answers_429_until_its_backlog_drains() {
    let nats = testkit::nats_url();
    // A flow whose deliver consumer is stopped: its backlog is the pipeline's lag, as much as
    // transform's would be.
    let sink_secret = testkit::random_secret();
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\" }}"),
        "destinations:\n  - { name: sink, kind: webhook, url: \"http://127.0.0.1:9/hooks\", secret_env: SINK_SECRET }\n\
         flows:\n  - { name: slow, object: contact, on: [created], destination: sink }\n",
        &[("SINK_SECRET", sink_secret.as_str())],
    )
    .await;
    let client = async_nats::connect(&nats).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let names = Names::new(&ingest.prefix);
    let golden = js
        .get_stream(names.stream(StreamKind::Golden))
        .await
        .expect("GOLDEN");
    let consumer: async_nats::jetstream::consumer::PullConsumer = golden
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(names.consumer("deliver-slow")),
            filter_subject: names.golden("contact"),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("deliver consumer");
    // Five golden changes waiting: past the bound of two.
    for i in 0..5 {
        js.publish(names.golden("contact"), format!("change {i}").into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }

    let refused = post_until(&ingest, "lag", 429, 200).await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = refused.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "overloaded");
    let lag = r#"switchyard_ingest_pipeline_lag "#;
    assert_eq!(ingest.metric(lag).await, Some(5));

    // Deliver catches up: every change handled and acknowledged.
    let mut batch = consumer
        .fetch()
        .max_messages(5)
        .messages()
        .await
        .expect("fetch");
    let mut drained = 0;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        message.expect("message").double_ack().await.expect("ack");
        drained += 1;
    }
    assert_eq!(drained, 5);

    let accepted = post_until(&ingest, "drained", 200, 429).await;
    let body: serde_json::Value = accepted.json().await.expect("JSON body");
    assert_eq!(body["status"], "accepted");
    ingest.stop(&nats).await;
}
