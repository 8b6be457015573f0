//! A standard webhook's way through ingest: bad input refused with clear statuses and counted,
//! a genuine webhook stored once, even when retried after JetStream's duplicate window.

use std::time::Duration;

use switchyard_chassis::testkit;

use crate::harness::{raw_messages, start, start_with};

#[tokio::test]
async fn refuses_bad_input_with_clear_statuses_and_counts_it() {
    let nats = testkit::nats_url();
    let ingest = start(&nats, "5s").await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;

    let (status, json) = ingest
        .post("nobody", &ingest.signed("m1", body), body)
        .await;
    assert_eq!(status, 404, "{json}");
    assert_eq!(json["error"]["code"], "unknown_source");

    let mut forged = ingest.signed("m2", body);
    forged[2].1 = "v1,bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsIQ==".to_owned();
    let (status, json) = ingest.post("demo", &forged, body).await;
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["error"]["code"], "bad_signature");

    let (status, _) = ingest.post("demo", &[], body).await;
    assert_eq!(status, 401, "unsigned requests are refused");

    let stale = testkit::signed_headers(
        &ingest.secret,
        "m3",
        switchyard_chassis::unix_now() - 600,
        body,
    );
    let (status, json) = ingest.post("demo", &stale, body).await;
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["error"]["code"], "stale_timestamp");

    let malformed = b"{\"type\": \"contact.created\", ";
    let (status, json) = ingest
        .post("demo", &ingest.signed("m4", malformed), malformed)
        .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("malformed JSON"),
        "{json}"
    );

    let (status, _) = ingest
        .request(
            reqwest::Method::POST,
            "demo",
            &ingest.signed("m6", body),
            body,
        )
        .await;
    assert_eq!(status, 415, "no content type");
    let mut as_text = ingest.signed("m7", body);
    as_text.push(("content-type", "text/plain".to_owned()));
    let (status, text) = ingest
        .request(reqwest::Method::POST, "demo", &as_text, body)
        .await;
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("unsupported content type"), "{text}");
    let (status, _) = ingest.request(reqwest::Method::GET, "demo", &[], b"").await;
    assert_eq!(status, 405);

    let big = format!(
        r#"{{"type":"contact.created","data":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let (status, json) = ingest
        .post("demo", &ingest.signed("m5", big.as_bytes()), big.as_bytes())
        .await;
    assert_eq!(status, 413, "{json}");

    // None of them reached the pipeline.
    assert_eq!(raw_messages(&nats, &ingest.prefix).await.0, 0);
    // All of them were counted.
    let counted = [
        ("unknown", "unknown_source", 1),
        ("demo", "bad_signature", 2),
        ("demo", "stale_timestamp", 1),
        ("demo", "malformed", 1),
        ("demo", "too_large", 1),
        ("demo", "unsupported_media_type", 2),
        ("demo", "method_not_allowed", 1),
    ];
    for (source, outcome, expected) in counted {
        let line =
            format!(r#"switchyard_ingest_webhooks_total{{source="{source}",outcome="{outcome}"}}"#);
        assert_eq!(ingest.metric(&line).await, Some(expected), "{line}");
    }

    // A genuine webhook is stored once, with the sender's id as Nats-Msg-Id.
    let headers = ingest.signed("msg_genuine", body);
    let (status, json) = ingest.post("demo", &headers, body).await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(false)),
        "{json}"
    );
    let (status, json) = ingest.post("demo", &headers, body).await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(true)),
        "a retry is acknowledged but not stored again: {json}"
    );
    let (count, msg_id) = raw_messages(&nats, &ingest.prefix).await;
    assert_eq!(count, 1);
    assert_eq!(msg_id.as_deref(), Some("demo:msg_genuine"));
    ingest.stop(&nats).await;
}

#[tokio::test]
async fn a_retry_after_the_jetstream_window_is_still_stored_once() {
    let nats = testkit::nats_url();
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\", duplicate_window: 1s }}"),
        "",
        &[],
    )
    .await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;
    let (status, json) = ingest
        .post("demo", &ingest.signed("late", body), body)
        .await;
    assert_eq!((status, json["duplicate"].as_bool()), (200, Some(false)));
    // Outlive JetStream's one-second window: only the PostgreSQL record can catch the retry now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, json) = ingest
        .post("demo", &ingest.signed("late", body), body)
        .await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(true)),
        "{json}"
    );
    assert_eq!(raw_messages(&nats, &ingest.prefix).await.0, 1);
    ingest.stop(&nats).await;
}
