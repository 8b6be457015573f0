//! Monitor's buckets, baselines and alerts over a real pipeline, at second scale: real traffic at
//! a steady rate builds the baseline, then a 30 % drop, an error spike at the destination or a
//! silent flow each raise exactly one alert, which resolves once things are back; alerts and the
//! health report reach a Slack-compatible webhook, signed, with no personal data; `ListAlerts`
//! shows them to read-only tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::json;
use switchyard_chassis::signing;
use switchyard_chassis::testkit;
use switchyard_integration_tests::{ADMIN_READ_TOKEN, FLOW, Options, Pipeline, Service};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{Alert, ListAlertsRequest};
use tonic::Request;

/// Bucket width of these tests: long enough that a scheduling hiccup of a few hundred
/// milliseconds on a busy machine moves few events across a boundary.
const BUCKET: u64 = 4;
const WAIT: Duration = Duration::from_secs(30);

/// One request the alerts webhook received.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    status: u16,
}

impl Hook {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the webhook body is JSON")
    }

    fn text(&self) -> String {
        self.json()["text"].as_str().unwrap_or_default().to_owned()
    }
}

#[derive(Clone, Default)]
struct Hooks {
    received: Arc<Mutex<Vec<Hook>>>,
    /// Statuses for the first requests; 200 after.
    script: Arc<Mutex<Vec<u16>>>,
}

/// Stands for the Slack incoming webhook: records every request.
struct Receiver {
    hooks: Hooks,
    url: String,
    secret: String,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let hooks = Hooks::default();
        hooks
            .script
            .lock()
            .expect("lock")
            .extend(script.iter().rev());
        let app = Router::new()
            .route("/slack", post(receive))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let url = format!("http://{}/slack", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            hooks,
            url,
            secret: testkit::random_secret(),
        }
    }

    fn received(&self) -> Vec<Hook> {
        self.hooks.received.lock().expect("lock").clone()
    }

    /// Monitor's settings for these tests, with this receiver as the webhook.
    fn monitor(&self, extra: &str) -> String {
        format!(
            "alerts: {{ evaluate_every: 200ms, bucket: {BUCKET}s, trailing_buckets: 6, webhook_url: \"{}\", webhook_secret_env: ALERTS_SECRET{extra} }}",
            self.url
        )
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("ALERTS_SECRET".to_owned(), self.secret.clone())]
    }

    /// Whether a request carries a valid Standard Webhooks signature by the alerts secret.
    fn verify(&self, hook: &Hook) -> bool {
        let key = signing::SigningKey::from_secret(&self.secret.clone().into()).expect("secret");
        let ts: i64 = hook.timestamp.parse().unwrap_or(0);
        signing::verify(
            &[key],
            Some(&hook.id),
            Some(&hook.timestamp),
            Some(&hook.signature),
            &hook.body,
            ts,
            300,
        )
        .is_ok()
    }

    /// Waits until a request whose text contains `needle` was answered 200.
    async fn wait_for(&self, needle: &str, within: Duration) -> Hook {
        let deadline = Instant::now() + within;
        loop {
            if let Some(hook) = self
                .received()
                .into_iter()
                .find(|h| h.status == 200 && h.text().contains(needle))
            {
                return hook;
            }
            assert!(
                Instant::now() < deadline,
                "no webhook containing {needle:?} within {within:?}; got {:#?}",
                self.received().iter().map(Hook::text).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(hooks): State<Hooks>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = hooks.script.lock().expect("lock").pop().unwrap_or(200);
    hooks.received.lock().expect("lock").push(Hook {
        id: header(signing::HEADER_ID),
        timestamp: header(signing::HEADER_TIMESTAMP),
        signature: header(signing::HEADER_SIGNATURE),
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_token<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_READ_TOKEN}")
            .parse()
            .expect("header value"),
    );
    request
}

async fn alerts(pipeline: &Pipeline, open_only: bool) -> Vec<Alert> {
    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    client
        .list_alerts(with_token(ListAlertsRequest {
            open_only,
            limit: 0,
        }))
        .await
        .expect("alerts")
        .into_inner()
        .alerts
}

/// Polls `ListAlerts` until `check` holds.
async fn wait_alerts(
    pipeline: &Pipeline,
    what: &str,
    within: Duration,
    check: impl Fn(&[Alert]) -> bool,
) -> Vec<Alert> {
    let deadline = Instant::now() + within;
    loop {
        let all = alerts(pipeline, false).await;
        if check(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {within:?}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn of_rule<'a>(alerts: &'a [Alert], rule: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| a.rule == rule).collect()
}

/// The next bucket boundary after now, as unix seconds.
fn next_boundary() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    now - now % BUCKET + BUCKET
}

/// Sends new contacts at `per_second` until the unix time `until`, each send on its own so a slow
/// answer does not shift the schedule; `sent` counts them and names them.
async fn send_until(pipeline: &Pipeline, tag: &str, per_second: u32, until: u64, sent: &mut u32) {
    let until = UNIX_EPOCH + Duration::from_secs(until);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut sends = FuturesUnordered::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if SystemTime::now() >= until {
                    break;
                }
                *sent += 1;
                let n = *sent;
                sends.push(async move {
                    let event = json!({"type": "contact.created", "data": {
                        "id": format!("{tag}-{n}"),
                        "email": format!("{tag}.{n}@example.com"),
                    }});
                    let (status, body) = pipeline.send(&format!("{tag}-{n}"), &event).await;
                    assert_eq!(status, 200, "{body}");
                });
            }
            Some(()) = sends.next(), if !sends.is_empty() => {}
        }
    }
    while sends.next().await.is_some() {}
}

/// Every webhook request is Slack-shaped, validly signed, and free of email addresses.
fn check_hooks(receiver: &Receiver) {
    for hook in receiver.received() {
        let body = hook.json();
        assert!(body["text"].is_string(), "{body}");
        let blocks = body["blocks"].as_array().expect("blocks");
        assert!(!blocks.is_empty());
        for block in blocks {
            assert_eq!(block["type"], "section", "{body}");
            assert_eq!(block["text"]["type"], "mrkdwn", "{body}");
        }
        assert!(receiver.verify(&hook), "bad signature on {}", hook.id);
        let text = String::from_utf8_lossy(&hook.body);
        assert!(
            !text.contains('@') && !text.contains("example.com"),
            "personal data in an alert: {text}"
        );
    }
}

#[tokio::test]
async fn a_volume_drop_raises_one_alert_that_resolves_when_volume_returns() {
    let receiver = Receiver::start(&[]).await;
    let pipeline = Pipeline::start(Options {
        extra_monitor: receiver.monitor(""),
        extra_env: receiver.env(),
        ..Options::default()
    })
    .await;
    // The first bucket is partial (ignored by baselines); five whole buckets of 10 a second make
    // the baseline, two buckets run 30 % lower, three are back to normal.
    let start = next_boundary();
    let mut sent = 0;
    send_until(&pipeline, "vol", 10, start + 5 * BUCKET, &mut sent).await;
    let before_drop = alerts(&pipeline, false).await;
    assert!(
        before_drop.is_empty(),
        "a steady flow raised {before_drop:#?}"
    );
    send_until(&pipeline, "vol", 7, start + 7 * BUCKET, &mut sent).await;
    wait_alerts(&pipeline, "the volume drop", WAIT, |a| {
        !of_rule(a, "volume_drop").is_empty()
    })
    .await;
    send_until(&pipeline, "vol", 10, start + 10 * BUCKET, &mut sent).await;
    let all = wait_alerts(&pipeline, "the drop resolved", WAIT, |a| {
        of_rule(a, "volume_drop")
            .iter()
            .all(|a| a.resolved_at.is_some())
    })
    .await;
    let drops = of_rule(&all, "volume_drop");
    // One for the flow, and one for its only source, whose numbers are the flow's.
    let mut ids: Vec<&str> = drops.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    let flow_drop = format!("volume_drop:flow={FLOW}");
    assert_eq!(
        ids,
        [flow_drop.as_str(), "volume_drop:source=demo"],
        "exactly one alert each: {all:#?}"
    );
    // Nothing else, except a spike: buckets are 4 s here, and on a loaded machine a pipeline
    // that stalls for a second or two reports its catch-up in one bucket (counts go by the time
    // deliver reports them), which is a spike by the rule. Any other alert is a failure.
    let others: Vec<&Alert> = all
        .iter()
        .filter(|a| a.rule != "volume_drop" && a.rule != "volume_spike")
        .collect();
    assert!(others.is_empty(), "and nothing else: {all:#?}");
    let drop = drops
        .iter()
        .find(|a| a.id == flow_drop)
        .expect("the flow's drop");
    assert_eq!(drop.severity, "warning");
    assert_eq!(drop.runbook, "docs/runbook.md#volume-drop");
    assert!(
        drop.summary.contains("below its baseline"),
        "{}",
        drop.summary
    );
    // Checked at once: a few seconds after the traffic stops, silence is a drop of its own.
    assert!(alerts(&pipeline, true).await.is_empty(), "none open now");
    let open = r#"switchyard_alerts_open{rule="volume_drop"}"#;
    assert_eq!(pipeline.metric(Service::Monitor, open).await, Some(0.0));

    // The buckets hold every report once, on bucket boundaries.
    pipeline.wait_drained(WAIT).await;
    let db = pipeline.db().await;
    let rows = db
        .query(
            "SELECT extract(epoch FROM bucket_start)::int8, received, delivered, latency_count, latency_ms_sum \
             FROM flow_buckets WHERE flow = $1 ORDER BY bucket_start",
            &[&FLOW],
        )
        .await
        .expect("buckets");
    let received: i64 = rows.iter().map(|r| r.get::<_, i64>(1)).sum();
    let delivered: i64 = rows.iter().map(|r| r.get::<_, i64>(2)).sum();
    assert_eq!(received, i64::from(sent));
    assert_eq!(delivered, i64::from(sent));
    for r in &rows {
        assert_eq!(
            r.get::<_, i64>(0) % i64::try_from(BUCKET).expect("small"),
            0
        );
        assert_eq!(
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            "one latency per delivery"
        );
        assert!(r.get::<_, i64>(4) > 0);
    }
    let steady: Vec<i64> = rows.iter().skip(1).take(5).map(|r| r.get(1)).collect();
    assert!(
        steady.iter().all(|n| (36..=44).contains(n)),
        "steady buckets near 40: {steady:?}"
    );
    assert_eq!(pipeline.flow_count("received").await, Some(f64::from(sent)));

    // Opened and resolved, each once, under different ids.
    let opened = receiver
        .wait_for("[warning] volume_drop:flow=contacts opened", WAIT)
        .await;
    let resolved = receiver
        .wait_for("[resolved] volume_drop:flow=contacts", WAIT)
        .await;
    assert_ne!(opened.id, resolved.id);
    check_hooks(&receiver);
    pipeline.finish().await;
}

#[tokio::test]
async fn an_error_spike_raises_one_alert_that_resolves() {
    let receiver = Receiver::start(&[]).await;
    let pipeline = Pipeline::start(Options {
        extra_monitor: receiver.monitor(""),
        extra_env: receiver.env(),
        // Every attempt reaches the failing destination and changes run out of attempts (the
        // circuit breaker, tested in `reliability`, would hold them back instead).
        sink_extra: ", circuit_breaker: { failures: 100000 }".to_owned(),
        ..Options::default()
    })
    .await;
    let start = next_boundary();
    let mut sent = 0;
    send_until(&pipeline, "err", 10, start + 5 * BUCKET, &mut sent).await;
    // The destination fails for two buckets: every attempt is retried, some are dead-lettered.
    pipeline.sink.script(&[], 500);
    send_until(&pipeline, "err", 10, start + 7 * BUCKET, &mut sent).await;
    wait_alerts(&pipeline, "the error spike", WAIT, |a| {
        !of_rule(a, "error_rate").is_empty()
    })
    .await;
    pipeline.sink.script(&[], 200);
    send_until(&pipeline, "err", 10, start + 10 * BUCKET, &mut sent).await;
    let all = wait_alerts(&pipeline, "the error spike resolved", WAIT, |a| {
        of_rule(a, "error_rate")
            .iter()
            .all(|a| a.resolved_at.is_some())
    })
    .await;
    let spikes = of_rule(&all, "error_rate");
    assert_eq!(spikes.len(), 1, "exactly one alert: {all:#?}");
    assert_eq!(spikes[0].id, format!("error_rate:flow={FLOW}"));
    assert_eq!(spikes[0].severity, "critical");
    assert_eq!(
        spikes[0].runbook,
        "docs/runbook.md#error-rate-above-its-baseline"
    );
    // Changes that ran out of attempts were dead-lettered: that raised its own alert.
    assert!(
        !of_rule(&all, "dlq_growth").is_empty(),
        "dead letters grew: {all:#?}"
    );
    // The volume never changed, so no drop. A spike may show: with 4 s buckets, a pipeline that
    // stalls for a second or two under the full suite reports its catch-up in one bucket, as in
    // the volume-drop test above.
    assert!(
        of_rule(&all, "volume_drop").is_empty(),
        "the volume never dropped: {all:#?}"
    );
    receiver
        .wait_for("[critical] error_rate:flow=contacts opened", WAIT)
        .await;
    receiver
        .wait_for("[resolved] error_rate:flow=contacts", WAIT)
        .await;
    check_hooks(&receiver);
    pipeline.finish().await;
}

#[tokio::test]
async fn a_stale_flow_breaches_its_freshness_sla_and_the_report_counts_its_value() {
    // The webhook fails its first answer: the message is retried under the same id.
    let receiver = Receiver::start(&[503]).await;
    let pipeline = Pipeline::start(Options {
        extra_monitor: receiver.monitor(&format!(", report_every: {BUCKET}s")),
        extra_env: receiver.env(),
        extra_flows: "  - { name: fresh, object: contact, destination: sink, freshness_sla: 3s, minutes_saved_per_event: 10, hourly_cost: 35 }".to_owned(),
        ..Options::default()
    })
    .await;
    for n in 1..=3 {
        let event = json!({"type": "contact.created", "data": {"id": format!("fr-{n}"), "email": format!("fresh.{n}@example.com")}});
        assert_eq!(pipeline.send(&format!("fr-{n}"), &event).await.0, 200);
    }
    pipeline.wait_drained(WAIT).await;
    // 3 deliveries × 10 minutes × 35 an hour.
    let value = r#"switchyard_flow_value_delivered{flow="fresh"}"#;
    assert_eq!(pipeline.metric(Service::Monitor, value).await, Some(17.5));
    let unpriced = format!(r#"switchyard_flow_value_delivered{{flow="{FLOW}"}}"#);
    assert_eq!(
        pipeline.metric(Service::Monitor, &unpriced).await,
        Some(0.0)
    );

    // Nothing is delivered for longer than the SLA.
    let all = wait_alerts(&pipeline, "the freshness breach", WAIT, |a| {
        !of_rule(a, "freshness").is_empty()
    })
    .await;
    let stale = of_rule(&all, "freshness");
    assert_eq!(stale.len(), 1, "{all:#?}");
    assert_eq!(stale[0].id, "freshness:flow=fresh");
    assert!(stale[0].summary.contains("SLA 3s"), "{}", stale[0].summary);
    assert!(stale[0].resolved_at.is_none());
    assert_eq!(alerts(&pipeline, true).await.len(), 1, "open only");
    let gauge = r#"switchyard_alerts_open{rule="freshness"}"#;
    assert_eq!(pipeline.metric(Service::Monitor, gauge).await, Some(1.0));
    let opened = receiver
        .wait_for("[critical] freshness:flow=fresh opened", WAIT)
        .await;
    assert!(
        opened
            .text()
            .contains("docs/runbook.md#freshness-sla-breached")
    );

    // A delivery makes the flow fresh again.
    let event =
        json!({"type": "contact.created", "data": {"id": "fr-4", "email": "fresh.4@example.com"}});
    assert_eq!(pipeline.send("fr-4", &event).await.0, 200);
    wait_alerts(&pipeline, "freshness restored", WAIT, |a| {
        of_rule(a, "freshness")
            .iter()
            .all(|a| a.resolved_at.is_some())
    })
    .await;
    receiver
        .wait_for("[resolved] freshness:flow=fresh", WAIT)
        .await;

    // The reports (one per bucket here) count the four deliveries and their value between them.
    let deadline = Instant::now() + WAIT;
    loop {
        let (mut delivered, mut value) = (0, 0.0);
        for hook in receiver.received() {
            let text = hook.text();
            if hook.status != 200 || !text.starts_with("Switchyard health report") {
                continue;
            }
            assert!(text.contains(&format!("*{FLOW}*: ")), "{text}");
            let Some(line) = text.lines().find(|l| l.contains("*fresh*: ")) else {
                panic!("no line for the flow: {text}");
            };
            let number_before = |marker: &str| -> f64 {
                let head = &line[..line.find(marker).expect(marker)];
                head.rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a number")
            };
            delivered += number_before(" delivered,") as u32;
            let after = &line[line.find("value delivered ").expect("value") + 16..];
            value += after
                .split(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a value");
            if delivered > 0 {
                assert!(line.contains("freshness SLA 3s"), "{line}");
            }
        }
        if delivered == 4 {
            // 4 × 10 minutes × 35 an hour, rounded per report.
            assert!((value - 23.33).abs() < 0.02, "value {value}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reports counted {delivered} deliveries, not 4"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The first request was answered 503 and tried again under the same id.
    let hooks = receiver.received();
    assert_eq!(hooks[0].status, 503);
    assert_eq!(hooks[1].id, hooks[0].id, "a retry keeps its webhook-id");
    assert_eq!(hooks[1].status, 200);
    check_hooks(&receiver);
    pipeline.finish().await;
}

/// Like `send_until`, to the standard-webhooks source `source` signed with `secret`.
async fn send_from_until(
    pipeline: &Pipeline,
    source: &str,
    secret: &str,
    per_second: u32,
    until: u64,
    sent: &mut u32,
) {
    let until = UNIX_EPOCH + Duration::from_secs(until);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut sends = FuturesUnordered::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if SystemTime::now() >= until {
                    break;
                }
                *sent += 1;
                let n = *sent;
                sends.push(async move {
                    let id = format!("{source}-{n}");
                    let body = serde_json::to_vec(&json!({"type": "contact.created", "data": {
                        "id": id,
                        "email": format!("{source}.{n}@example.com"),
                    }}))
                    .expect("json");
                    let mut headers = testkit::signed_headers(
                        secret,
                        &id,
                        switchyard_chassis::unix_now(),
                        &body,
                    )
                    .to_vec();
                    headers.push(("content-type", "application/json".to_owned()));
                    let (status, text) = pipeline.send_to(source, &headers, &body).await;
                    assert_eq!(status, 200, "{text}");
                });
            }
            Some(()) = sends.next(), if !sends.is_empty() => {}
        }
    }
    while sends.next().await.is_some() {}
}

/// Sends from demo and crm2 at their rates (a second) until `until`.
async fn two_sources(
    pipeline: &Pipeline,
    secret: &str,
    (demo_rate, crm2_rate): (u32, u32),
    until: u64,
    (demo, crm2): (&mut u32, &mut u32),
) {
    tokio::join!(
        send_until(pipeline, "d", demo_rate, until, demo),
        send_from_until(pipeline, "crm2", secret, crm2_rate, until, crm2),
    );
}

#[tokio::test]
async fn a_drop_on_one_source_raises_one_alert_naming_it_that_resolves() {
    let receiver = Receiver::start(&[]).await;
    let secret = testkit::random_secret();
    let mut env = receiver.env();
    env.push(("CRM2_SECRET".to_owned(), secret.clone()));
    let pipeline = Pipeline::start(Options {
        extra_monitor: receiver.monitor(""),
        extra_env: env,
        extra_sources: "  - { name: crm2, kind: standard-webhooks, secret_env: [CRM2_SECRET] }"
            .to_owned(),
        ..Options::default()
    })
    .await;
    // Two sources feed the flow: demo at 12 a second, crm2 at 10. Then crm2 drops by 30 % for two
    // buckets: its own baseline is left by 30 %, the flow's only by 14 %, under the 20 % that
    // alerts; then crm2 is back.
    let start = next_boundary();
    let (mut demo, mut crm2) = (0, 0);
    two_sources(
        &pipeline,
        &secret,
        (12, 10),
        start + 5 * BUCKET,
        (&mut demo, &mut crm2),
    )
    .await;
    let before = alerts(&pipeline, false).await;
    assert!(before.is_empty(), "steady sources raised {before:#?}");
    two_sources(
        &pipeline,
        &secret,
        (12, 7),
        start + 7 * BUCKET,
        (&mut demo, &mut crm2),
    )
    .await;
    wait_alerts(&pipeline, "the source's drop", WAIT, |a| {
        !of_rule(a, "volume_drop").is_empty()
    })
    .await;
    two_sources(
        &pipeline,
        &secret,
        (12, 10),
        start + 10 * BUCKET,
        (&mut demo, &mut crm2),
    )
    .await;
    let all = wait_alerts(&pipeline, "the source's drop resolved", WAIT, |a| {
        of_rule(a, "volume_drop")
            .iter()
            .all(|a| a.resolved_at.is_some())
    })
    .await;
    assert_eq!(all.len(), 1, "exactly one alert: {all:#?}");
    let drop = &all[0];
    assert_eq!(drop.id, "volume_drop:source=crm2");
    assert_eq!(drop.runbook, "docs/runbook.md#volume-drop");
    assert!(
        drop.summary.starts_with("source crm2: ") && drop.summary.contains("below its baseline"),
        "{}",
        drop.summary
    );
    assert!(drop.resolved_at.is_some());

    // Each source's bucket holds its own changes.
    pipeline.wait_drained(WAIT).await;
    let db = pipeline.db().await;
    for (source, sent) in [("demo", demo), ("crm2", crm2)] {
        let received: i64 = db
            .query_one(
                "SELECT coalesce(sum(received), 0)::int8 FROM source_buckets WHERE source = $1",
                &[&source],
            )
            .await
            .expect("source buckets")
            .get(0);
        assert_eq!(received, i64::from(sent), "{source}");
    }
    receiver
        .wait_for("[warning] volume_drop:source=crm2 opened", WAIT)
        .await;
    check_hooks(&receiver);
    pipeline.finish().await;
}
