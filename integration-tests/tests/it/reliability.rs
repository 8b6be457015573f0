//! Deliver's failure handling over a real pipeline: a change older than its flow's `max_age` is
//! dead-lettered instead of tried again; a destination that keeps failing trips its circuit
//! breaker, so deliver stops calling it until a cool-down ends, and every change is delivered
//! once after it recovers; a 410 pauses the flow for good (across restarts) and raises one
//! `flow_paused` alert until an operator resumes it; a refused OAuth2 refresh raises one
//! `credentials` alert that resolves when a refresh works again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_integration_tests::vendor_apis::{
    CLIENT_ID, CLIENT_SECRET, Connector, Fault, VendorApis,
};
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, FLOW, Options, Pipeline, Service, Sink,
};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    Alert, DeadLetter, ListAlertsRequest, ListAuditRequest, ListFlowsRequest, ResumeFlowRequest,
};
use tonic::Request;

const WAIT: Duration = Duration::from_secs(60);

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}

fn contact(id: &str) -> serde_json::Value {
    json!({ "type": "contact.created", "data": { "id": id, "email": format!("{id}@example.com") } })
}

/// A pipeline with a second webhook destination `flaky` on its own sink, written by the flow
/// `flaky-contacts` (`flow_keys` and `breaker` add YAML keys), and alerts evaluated every 200 ms.
async fn with_flaky(flow_keys: &str, breaker: &str) -> (Pipeline, Sink) {
    let flaky = Sink::start().await;
    let pipeline = Pipeline::start(Options {
        extra_destinations: format!(
            "  - {{ name: flaky, kind: webhook, url: \"{}/flaky\", secret_env: FLAKY_SECRET, timeout: 2s, circuit_breaker: {{ {breaker} }} }}",
            flaky.url()
        ),
        extra_flows: format!(
            "  - {{ name: flaky-contacts, object: contact, destination: flaky{flow_keys} }}"
        ),
        extra_env: vec![("FLAKY_SECRET".to_owned(), flaky.secret().to_owned())],
        extra_monitor: "alerts: { evaluate_every: 200ms }".to_owned(),
        ..Options::default()
    })
    .await;
    (pipeline, flaky)
}

/// The dead letters of `flow`.
async fn dead_letters(pipeline: &Pipeline, flow: &str) -> Vec<DeadLetter> {
    let letters = pipeline.flow_dead_letters(flow).await;
    letters.into_iter().map(|(_, letter)| letter).collect()
}

/// Polls until `check` holds for `flow`'s dead letters.
async fn wait_dead_letters(
    pipeline: &Pipeline,
    flow: &str,
    check: impl Fn(&[DeadLetter]) -> bool,
) -> Vec<DeadLetter> {
    let deadline = Instant::now() + WAIT;
    loop {
        let letters = dead_letters(pipeline, flow).await;
        if check(&letters) {
            return letters;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters of {flow} not as expected: {letters:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alerts(pipeline: &Pipeline) -> Vec<Alert> {
    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    client
        .list_alerts(with_token(
            ListAlertsRequest {
                open_only: false,
                limit: 0,
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("alerts")
        .into_inner()
        .alerts
}

/// Polls `ListAlerts` until `check` holds for the alerts of `rule`.
async fn wait_alerts(
    pipeline: &Pipeline,
    rule: &str,
    check: impl Fn(&[Alert]) -> bool,
) -> Vec<Alert> {
    let deadline = Instant::now() + WAIT;
    loop {
        let of_rule: Vec<Alert> = alerts(pipeline)
            .await
            .into_iter()
            .filter(|a| a.rule == rule)
            .collect();
        if check(&of_rule) {
            return of_rule;
        }
        assert!(
            Instant::now() < deadline,
            "{rule} alerts not as expected: {of_rule:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a deliver metric until it has `value`.
async fn wait_metric(pipeline: &Pipeline, line: &str, value: f64) {
    let deadline = Instant::now() + WAIT;
    while pipeline.metric(Service::Deliver, line).await != Some(value) {
        assert!(Instant::now() < deadline, "{line} never became {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_change_older_than_max_age_is_dead_lettered_instead_of_retried() {
    // Many attempts allowed, and a breaker that never opens: only the age stops the retries.
    let (pipeline, flaky) = with_flaky(
        ", max_attempts: 100, retry_base: 200ms, retry_max: 400ms, max_age: 3s",
        "failures: 1000",
    )
    .await;
    flaky.script(&[], 500);
    assert_eq!(pipeline.send("old-1", &contact("old-1")).await.0, 200);
    let letters = wait_dead_letters(&pipeline, "flaky-contacts", |l| !l.is_empty()).await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.starts_with("maximum age 3s exceeded"),
        "{}",
        letters[0].reason
    );
    pipeline.wait_drained(WAIT).await;
    let calls = flaky.received().len();
    // About one call per retry delay during 3 s: far below the 100 attempts allowed.
    assert!(
        (2..=20).contains(&calls),
        "the destination saw {calls} calls"
    );
    assert_eq!(
        dead_letters(&pipeline, "flaky-contacts").await.len(),
        1,
        "dead-lettered once"
    );
    assert_eq!(flaky.received().len(), calls, "and never called again");
    // The other flow delivered the same change as usual.
    assert_eq!(pipeline.sink.received().len(), 1);
    pipeline.finish().await;
}

#[tokio::test]
async fn an_open_circuit_breaker_stops_calls_until_the_destination_recovers() {
    let (pipeline, flaky) = with_flaky(
        ", max_attempts: 10, retry_base: 50ms, retry_max: 200ms, max_age: 10m",
        "failures: 3, cool_down: 2s",
    )
    .await;
    flaky.script(&[], 500);
    let gauge = r#"switchyard_deliver_circuit_open{destination="flaky"}"#;
    assert_eq!(pipeline.metric(Service::Deliver, gauge).await, Some(0.0));
    for i in 0..20 {
        let id = format!("cb-{i}");
        assert_eq!(pipeline.send(&id, &contact(&id)).await.0, 200);
    }
    wait_metric(&pipeline, gauge, 1.0).await;
    let opened = flaky.received().len();
    // Without the breaker, 20 changes retried every 50-200 ms would make well over a hundred
    // calls in 6 s; with it, one trial per 2 s cool-down.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = flaky.received().len() - opened;
    assert!(
        during <= 5,
        "{during} calls while the breaker was open (after {opened} before it opened)"
    );
    assert!(opened + during < 20 * 3, "{} calls in all", opened + during);

    flaky.script(&[], 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let delivered = flaky.received().iter().filter(|r| r.status == 200).count();
        if delivered >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{delivered} of 20 delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.wait_drained(WAIT).await;
    let mut per_change: HashMap<String, usize> = HashMap::new();
    for r in flaky.received().iter().filter(|r| r.status == 200) {
        *per_change.entry(r.webhook_id.clone()).or_default() += 1;
    }
    assert_eq!(per_change.len(), 20, "every change delivered");
    assert!(
        per_change.values().all(|n| *n == 1),
        "each exactly once: {per_change:?}"
    );
    assert!(dead_letters(&pipeline, "flaky-contacts").await.is_empty());
    assert_eq!(pipeline.metric(Service::Deliver, gauge).await, Some(0.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn a_410_pauses_the_flow_across_restarts_with_one_alert_until_an_operator_resumes_it() {
    let pipeline = Pipeline::start(Options {
        extra_monitor: "alerts: { evaluate_every: 200ms }".to_owned(),
        ..Options::default()
    })
    .await;
    let mut pipeline = pipeline;
    pipeline.sink.script(&[410], 200);
    assert_eq!(pipeline.send("g1", &contact("g1")).await.0, 200);
    let letters = wait_dead_letters(&pipeline, FLOW, |l| l.len() == 1).await;
    assert!(
        letters[0].reason.contains("flow paused"),
        "{}",
        letters[0].reason
    );
    let open = wait_alerts(&pipeline, "flow_paused", |a| a.len() == 1).await;
    assert_eq!(open[0].id, format!("flow_paused:flow={FLOW}"));
    assert!(open[0].resolved_at.is_none());
    assert_eq!(open[0].runbook, "docs/runbook.md#a-flow-is-paused");

    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let flows = client
        .list_flows(with_token(ListFlowsRequest {}, ADMIN_READ_TOKEN))
        .await
        .expect("flows")
        .into_inner()
        .flows;
    assert!(
        flows.iter().any(|f| f.name == FLOW && f.paused),
        "{flows:?}"
    );

    // The pause outlives a restart: the next change is dead-lettered without a call.
    pipeline.stop_service(Service::Deliver).await;
    pipeline.start_service(Service::Deliver).await;
    assert_eq!(pipeline.send("g2", &contact("g2")).await.0, 200);
    let letters = wait_dead_letters(&pipeline, FLOW, |l| l.len() == 2).await;
    assert!(
        letters[1].reason.contains("flow paused"),
        "{}",
        letters[1].reason
    );
    pipeline.wait_drained(WAIT).await;
    assert_eq!(
        pipeline.sink.received().len(),
        1,
        "the destination was not called again"
    );

    let status = client
        .resume_flow(with_token(
            ResumeFlowRequest {
                flow: FLOW.to_owned(),
                reason: "endpoint restored".to_owned(),
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("read-only tokens cannot resume");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let status = client
        .resume_flow(with_token(
            ResumeFlowRequest {
                flow: "nope".to_owned(),
                reason: String::new(),
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect_err("unknown flow");
    assert_eq!(status.code(), tonic::Code::NotFound);
    client
        .resume_flow(with_token(
            ResumeFlowRequest {
                flow: FLOW.to_owned(),
                reason: "endpoint restored".to_owned(),
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect("resumed");
    let resolved = wait_alerts(&pipeline, "flow_paused", |a| {
        a.len() == 1 && a[0].resolved_at.is_some()
    })
    .await;
    assert_eq!(resolved.len(), 1, "one alert, raised once");

    assert_eq!(pipeline.send("g3", &contact("g3")).await.0, 200);
    pipeline.sink.wait_for(2, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let received = pipeline.sink.received();
    assert_eq!(received[1].status, 200);
    assert_eq!(received[1].json()["data"]["email"], "g3@example.com");
    assert_eq!(dead_letters(&pipeline, FLOW).await.len(), 2);
    let audit = client
        .list_audit(with_token(ListAuditRequest { limit: 10 }, ADMIN_READ_TOKEN))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "flow.resume" && e.target == format!("flow:{FLOW}")),
        "{audit:?}"
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn a_refused_token_refresh_raises_one_credentials_alert_that_resolves_when_fixed() {
    let apis = VendorApis::start().await;
    let c = Connector::Hubspot;
    let destination =
        crate::connectors::destination(&apis, c, "crm", ", circuit_breaker: { failures: 1000 }");
    let flow = "  - { name: crm-contacts, object: contact, destination: crm, max_attempts: 30, retry_base: 500ms, retry_max: 1s, max_age: 10m }".to_owned();
    let pipeline = Pipeline::start(Options {
        extra_destinations: destination,
        extra_flows: flow,
        extra_env: vec![
            ("VA_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
            ("VA_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
            ("VA_HUBSPOT_SECRET".to_owned(), c.first_access_token()),
            ("VA_HUBSPOT_REFRESH".to_owned(), c.first_refresh_token()),
        ],
        extra_monitor: "alerts: { evaluate_every: 200ms }".to_owned(),
        ..Options::default()
    })
    .await;
    // The access token is revoked; the token endpoint refuses the refresh (invalid_grant) for a
    // few seconds of retries, then takes it again (the connection re-authorised).
    apis.fail_next(c, Fault::RevokeToken);
    for _ in 0..8 {
        apis.fail_next_refresh(c, 400);
    }
    assert_eq!(pipeline.send("cred-1", &contact("cred-1")).await.0, 200);
    let open = wait_alerts(&pipeline, "credentials", |a| !a.is_empty()).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, "credentials:destination=crm");
    assert!(
        open[0].summary.contains("invalid_grant"),
        "{}",
        open[0].summary
    );
    assert_eq!(
        open[0].runbook,
        "docs/runbook.md#destination-credentials-failing-or-expiring"
    );
    let resolved = wait_alerts(&pipeline, "credentials", |a| {
        a.iter().all(|a| a.resolved_at.is_some())
    })
    .await;
    assert_eq!(resolved.len(), 1, "one alert for the whole outage");
    pipeline.wait_drained(WAIT).await;
    assert!(apis.refreshes(c) >= 1, "a refresh worked");
    assert!(dead_letters(&pipeline, "crm-contacts").await.is_empty());
    let written = apis
        .requests(c)
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .count();
    assert!(
        written >= 1,
        "the change was written once the refresh worked"
    );
    pipeline.finish().await;
}
