//! The admin API over a real pipeline: read-only tokens can look but not replay, operators can
//! replay a dead letter into its flow, and every operator action lands in the audit log.

use std::time::Duration;

use serde_json::json;
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, FLOW, Options, Pipeline, with_token,
};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    GetFlowHealthRequest, ListAuditRequest, ListDeadLettersRequest, ListFlowsRequest,
    ReplayDeadLetterRequest,
};
use tonic::Request;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn operators_replay_dead_letters_and_read_only_tokens_cannot() {
    let pipeline = Pipeline::start(Options::default()).await;
    // The destination refuses the first write: a dead letter.
    pipeline.sink.script(&[400], 200);
    let event =
        json!({"type": "contact.created", "data": {"id": "crm-9", "email": "replay@example.com"}});
    assert_eq!(pipeline.send("r1", &event).await.0, 200);
    pipeline.sink.wait_for(1, WAIT).await;
    pipeline.wait_drained(WAIT).await;

    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let status = client
        .list_flows(Request::new(ListFlowsRequest {}))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let status = client
        .list_flows(with_token(ListFlowsRequest {}, "guess"))
        .await
        .expect_err("wrong token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let flows = client
        .list_flows(with_token(ListFlowsRequest {}, ADMIN_READ_TOKEN))
        .await
        .expect("flows")
        .into_inner();
    assert_eq!(
        flows
            .flows
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        vec![FLOW]
    );
    let letters = client
        .list_dead_letters(with_token(
            ListDeadLettersRequest {
                stage: "deliver".into(),
                key: FLOW.into(),
                ..Default::default()
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("dead letters")
        .into_inner()
        .dead_letters;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].http_status, 400);
    assert!(
        letters[0].reason.contains("destination answered 400"),
        "{}",
        letters[0].reason
    );

    let denied = client
        .replay_dead_letter(with_token(
            ReplayDeadLetterRequest {
                sequence: letters[0].sequence,
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("read-only cannot replay");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(pipeline.sink.received().len(), 1, "nothing was replayed");

    let replayed = client
        .replay_dead_letter(with_token(
            ReplayDeadLetterRequest {
                sequence: letters[0].sequence,
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect("operator replays")
        .into_inner();
    assert!(replayed.replayed);
    assert_eq!(
        replayed.subject,
        format!("{}.golden.contact", pipeline.prefix),
        "back into its flow's stream"
    );
    pipeline.sink.wait_for(2, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let received = pipeline.sink.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![400, 200]
    );
    assert_eq!(
        received[0].webhook_id, received[1].webhook_id,
        "the same idempotency key"
    );

    let health = client
        .get_flow_health(with_token(
            GetFlowHealthRequest { flow: FLOW.into() },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        (health.received, health.delivered, health.dead_lettered),
        (1, 1, 1)
    );
    assert!(health.last_delivered_at.is_some());
    let missing = client
        .get_flow_health(with_token(
            GetFlowHealthRequest {
                flow: "nope".into(),
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("unknown flow");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let audit = client
        .list_audit(with_token(
            ListAuditRequest { limit: 1000 },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("audit")
        .into_inner();
    // Deliver's destination writes are audited too; this test is about the operator's.
    let mut audit = audit;
    audit.entries.retain(|e| e.action != "destination.write");
    assert_eq!(
        audit.entries.len(),
        1,
        "only the operator's replay is an action"
    );
    assert_eq!(
        (
            audit.entries[0].role.as_str(),
            audit.entries[0].action.as_str()
        ),
        ("operator", "dlq.replay")
    );
    assert_eq!(
        audit.entries[0].target,
        format!("dlq:{}", letters[0].sequence)
    );
    pipeline.finish().await;
}
