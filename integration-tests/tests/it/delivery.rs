//! A destination that fails, then recovers, gets the change once; one that refuses it sends it to
//! the dead-letter queue with the status and the reason; a payload that breaks its contract does too.

use std::time::Duration;

use prost::Message as _;
use serde_json::json;
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::{FLOW, Options, Pipeline};
use switchyard_proto::v1::DeadLetter;

fn jane() -> serde_json::Value {
    json!({ "type": "contact.created", "data": { "id": "crm-1", "email": "jane@example.com", "name": "Jane Doe" } })
}

#[tokio::test]
async fn a_sink_answering_500_then_200_gets_the_change_once_after_a_retry() {
    let pipeline = Pipeline::start(Options::default()).await;
    pipeline.sink.script(&[500], 200);
    let (status, _) = pipeline.send("e1", &jane()).await;
    assert_eq!(status, 200);
    pipeline.sink.wait_for(2, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let received = pipeline.sink.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 200]
    );
    assert_eq!(
        received[0].webhook_id, received[1].webhook_id,
        "the retry carries the same idempotency key"
    );
    assert_eq!(received[0].body, received[1].body, "and the same body");
    assert!(pipeline.stream_messages(StreamKind::Dlq).await.is_empty());
    assert_eq!(pipeline.flow_count("failed").await, Some(1.0));
    assert_eq!(pipeline.flow_count("delivered").await, Some(1.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn a_sink_answering_400_dead_letters_with_the_status_and_reason() {
    let pipeline = Pipeline::start(Options::default()).await;
    pipeline.sink.script(&[], 400);
    let (status, _) = pipeline.send("e1", &jane()).await;
    assert_eq!(status, 200);
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    assert_eq!(
        pipeline.sink.received().len(),
        1,
        "a refusal is not retried"
    );
    let dead = pipeline.stream_messages(StreamKind::Dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].subject.as_str(),
        format!("{}.dlq.deliver.{FLOW}", pipeline.prefix)
    );
    let letter = DeadLetter::decode(dead[0].payload.as_ref()).expect("dead letter");
    assert_eq!(letter.http_status, 400);
    assert_eq!(letter.stage, "deliver");
    assert!(
        letter.reason.contains("destination answered 400"),
        "{}",
        letter.reason
    );
    assert_eq!(
        dead[0]
            .headers
            .get("Switchyard-Dlq-Reason")
            .map(|v| v.as_str().to_owned()),
        Some(letter.reason.clone())
    );
    // The destination's answer quoted the record; the letter keeps the answer, not the email.
    assert!(
        letter.response_body.contains("record refused")
            && letter.response_body.contains("j***@example.com"),
        "{}",
        letter.response_body
    );
    assert!(
        !letter.response_body.contains("jane@example.com"),
        "{}",
        letter.response_body
    );

    let db = pipeline.db().await;
    let delivered: i64 = db
        .query_one("SELECT count(*) FROM deliveries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(delivered, 0);
    assert_eq!(pipeline.flow_count("dead_lettered").await, Some(1.0));
    assert_eq!(pipeline.flow_count("delivered").await, Some(0.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn a_payload_that_breaks_its_contract_is_dead_lettered_with_every_problem_named() {
    let pipeline = Pipeline::start(Options::default()).await;
    let bad = json!({ "type": "contact.created", "data": { "email": "jane.doe@example" } });
    let (status, _) = pipeline.send("bad", &bad).await;
    assert_eq!(
        status, 200,
        "well-formed and signed: accepted, then judged by its contract"
    );
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let dead = pipeline.stream_messages(StreamKind::Dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].subject.as_str(),
        format!("{}.dlq.transform.demo", pipeline.prefix)
    );
    let letter = DeadLetter::decode(dead[0].payload.as_ref()).expect("dead letter");
    assert!(
        letter
            .reason
            .starts_with("contract violation (contact/v1, mapping standard-webhooks-contact)"),
        "{}",
        letter.reason
    );
    assert!(
        letter.reason.contains("record id: nothing at data.id"),
        "{}",
        letter.reason
    );
    // The field and the rule, never the customer's value: read-only users see reasons.
    assert!(
        letter
            .reason
            .contains("contact.email: \"j***@example\" is not an email"),
        "{}",
        letter.reason
    );
    let header = dead[0]
        .headers
        .get("Switchyard-Dlq-Reason")
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    for shown in [letter.reason.as_str(), header.as_str()] {
        assert!(!shown.contains("jane.doe"), "{shown}");
    }
    assert!(pipeline.sink.received().is_empty());
    pipeline.finish().await;
}

#[tokio::test]
async fn a_company_reaches_a_webhook_destination_as_a_company() {
    let pipeline = Pipeline::start(Options {
        extra_flows: "  - { name: companies, object: company, destination: sink }".to_owned(),
        ..Options::default()
    })
    .await;
    let company = json!({"type": "company.created", "timestamp": "2026-11-27T10:00:00Z",
        "data": {"id": "co-7", "name": "Acme Ltd", "website": "https://www.acme.co.uk/about",
                 "tax_id": "GB 123 456 789", "industry": "Manufacturing", "country": "gb"}});
    let (status, _) = pipeline.send("co7", &company).await;
    assert_eq!(status, 200);
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let received = pipeline.sink.received();
    assert_eq!(received.len(), 1, "only the company flow takes companies");
    assert!(
        pipeline.sink.verify(&received[0]),
        "signed the Standard Webhooks way"
    );
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).expect("JSON");
    assert_eq!(body["type"], "company.created");
    let data = &body["data"];
    // As dedupe normalised them: the registrable domain, the tax id without its formatting.
    assert_eq!(data["name"], "Acme Ltd");
    assert_eq!(data["domain"], "acme.co.uk");
    assert_eq!(data["tax_id"], "GB123456789");
    assert_eq!(data["industry"], "Manufacturing");
    assert_eq!(data["country"], "GB");
    assert_eq!(data["version"], 1);
    assert!(data.get("email").is_none(), "no contact fields: {data}");
    pipeline.finish().await;
}
