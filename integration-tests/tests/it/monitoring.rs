//! Monitor's records over a real pipeline: every destination write lands in the audit log exactly
//! once however often its report comes back, the dashboard's golden-record page shows the
//! source records and events that built the record, and old buckets and report ids are pruned
//! while recent ones stay.

use std::time::{Duration, Instant, SystemTime};

use prost::Message as _;
use serde_json::json;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::{
    ADMIN_READ_TOKEN, FLOW, MAILCHIMP_TOKEN, Options, Pipeline, Service,
};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{AuditEntry, DeliveryOutcome, DeliveryResult, ListAuditRequest};
use tonic::Request;

const WAIT: Duration = Duration::from_secs(30);

async fn audit(pipeline: &Pipeline) -> Vec<AuditEntry> {
    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let mut request = Request::new(ListAuditRequest { limit: 1000 });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_READ_TOKEN}")
            .parse()
            .expect("header value"),
    );
    client
        .list_audit(request)
        .await
        .expect("audit")
        .into_inner()
        .entries
}

fn writes(entries: &[AuditEntry]) -> Vec<&AuditEntry> {
    entries
        .iter()
        .filter(|e| e.action == "destination.write")
        .collect()
}

/// Waits until `check` holds of monitor's delivered count.
async fn wait_delivered(pipeline: &Pipeline, expected: f64) {
    let deadline = Instant::now() + WAIT;
    while pipeline.flow_count("delivered").await != Some(expected) {
        assert!(
            Instant::now() < deadline,
            "monitor never counted {expected} deliveries: {:?}",
            pipeline.flow_count("delivered").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_destination_write_is_audited_once_however_often_its_report_comes_back() {
    let pipeline = Pipeline::start(Options::default()).await;
    const N: usize = 4;
    for n in 0..N {
        let event = json!({"type": "contact.created", "data": {"id": format!("aud-{n}"), "email": format!("aud.{n}@example.com")}});
        assert_eq!(pipeline.send(&format!("aud-{n}"), &event).await.0, 200);
    }
    pipeline.sink.wait_for(N, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    wait_delivered(&pipeline, 4.0).await;

    let entries = audit(&pipeline).await;
    let written = writes(&entries);
    assert_eq!(written.len(), N, "{entries:#?}");
    // The reports deliver sent, to compare targets with and to send again.
    let reports: Vec<DeliveryResult> = pipeline
        .stream_messages(StreamKind::Ops)
        .await
        .into_iter()
        .filter(|m| m.subject.contains(".ops.delivery."))
        .filter_map(|m| DeliveryResult::decode(m.payload.as_ref()).ok())
        .collect();
    // One report per change: deliver sends no "received" of its own any more.
    assert_eq!(reports.len(), N, "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|r| r.outcome == i32::from(DeliveryOutcome::Delivered))
    );
    assert_eq!(pipeline.flow_count("received").await, Some(N as f64));
    let mut targets: Vec<&str> = written.iter().map(|e| e.target.as_str()).collect();
    targets.sort_unstable();
    let mut expected: Vec<String> = reports
        .iter()
        .map(|r| format!("sink/{FLOW}/{}", r.change_id))
        .collect();
    expected.sort_unstable();
    assert_eq!(targets, expected);
    for entry in &written {
        assert_eq!(entry.role, "deliver");
        assert_eq!(entry.detail, "http status 200, attempt 1", "{entry:?}");
        assert!(!entry.target.contains('@'), "no personal data: {entry:?}");
    }

    // The same reports again under new message ids, as if their "counted" marks had been pruned:
    // they are counted again, but each write stays audited once.
    let client = async_nats::connect(&pipeline.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    for (i, report) in reports.iter().enumerate() {
        publish_report(&js, &pipeline, &format!("again-{i}"), report).await;
    }
    wait_delivered(&pipeline, 8.0).await;
    pipeline.wait_drained(WAIT).await;
    let entries = audit(&pipeline).await;
    assert_eq!(writes(&entries).len(), N, "{entries:#?}");
    let db = pipeline.db().await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'destination.write'",
            &[],
        )
        .await
        .expect("audit rows")
        .get(0);
    assert_eq!(rows, 4);
    // Received stays one per change however often its reports come back, and an older
    // deliver's own "received" report of a change counts with it, not beside it.
    let old_style = DeliveryResult {
        outcome: DeliveryOutcome::Received.into(),
        http_status: 0,
        ..reports[0].clone()
    };
    let id = format!(
        "ops:{FLOW}:{}:{}",
        reports[0].change_id,
        DeliveryOutcome::Received.as_str_name()
    );
    publish_report(&js, &pipeline, &id, &old_style).await;
    pipeline.wait_drained(WAIT).await;
    assert_eq!(pipeline.flow_count("received").await, Some(N as f64));
    assert_eq!(pipeline.flow_count("delivered").await, Some(2.0 * N as f64));
    pipeline.finish().await;
}

/// Publishes a delivery report of the pipeline's flow under `msg_id`, as deliver does.
async fn publish_report(
    js: &async_nats::jetstream::Context,
    pipeline: &Pipeline,
    msg_id: &str,
    report: &DeliveryResult,
) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(
        format!("{}.ops.delivery.{FLOW}", pipeline.prefix),
        headers,
        report.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
}

/// Logs in to the dashboard with a token; answers the session cookie.
pub(crate) async fn session(http: &reqwest::Client, base: &str, token: &str) -> String {
    let response = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .expect("login");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn the_golden_record_page_lists_the_sources_and_events_that_built_it() {
    let pipeline = Pipeline::start(Options::default()).await;
    // She subscribes on the Mailchimp list; then the CRM (the demo source) learns her last name.
    let form = "type=subscribe&fired_at=2026-11-27+10%3A00%3A00&data%5Bid%5D=8a25ff1d98&data%5Bemail%5D=grace%40example.org&data%5Bmerges%5D%5BFNAME%5D=Grace";
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, text) = pipeline
        .send_to(
            &format!("mailchimp/{MAILCHIMP_TOKEN}"),
            &headers,
            form.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    pipeline.wait_drained(WAIT).await;
    let event = json!({"type": "contact.created", "data": {"id": "crm-77", "email": "grace@example.org", "first_name": "Grace", "last_name": "Hopper"}});
    assert_eq!(pipeline.send("lin-1", &event).await.0, 200);
    pipeline.wait_drained(WAIT).await;

    let db = pipeline.db().await;
    let golden: String = db
        .query_one(
            "SELECT id::text FROM golden_contacts WHERE email = 'grace@example.org'",
            &[],
        )
        .await
        .expect("one golden contact")
        .get(0);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = session(&http, &pipeline.dashboard_url, ADMIN_READ_TOKEN).await;
    // The lookup form leads to the record's page.
    let lookup = http
        .get(format!(
            "{}/golden?object=contact&id={golden}",
            pipeline.dashboard_url
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("lookup");
    assert_eq!(lookup.status(), 303);
    assert_eq!(
        lookup
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/golden/contact/{golden}").as_str())
    );
    let page = http
        .get(format!(
            "{}/golden/contact/{golden}",
            pipeline.dashboard_url
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("golden page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    for (system, id) in [("demo", "crm-77"), ("mailchimp", "8a25ff1d98")] {
        let row = html
            .split("<tr")
            .find(|r| r.contains(&format!("data-system=\"{system}\"")))
            .unwrap_or_else(|| panic!("no {system} row in {html}"));
        assert!(row.contains(id), "{system} row names {id}: {row}");
    }
    // Both source events, each with the version it made.
    assert!(html.contains("id=\"events\""), "{html}");
    for version in [">1<", ">2<"] {
        assert!(html.contains(version), "version {version} in {html}");
    }
    assert!(html.contains("contact version 2"), "{html}");
    // Ids and times only: never the record's fields.
    assert!(
        !html.contains("grace@example.org") && !html.contains("Grace") && !html.contains("Hopper"),
        "{html}"
    );

    // Not logged in: the login page, not the lineage.
    let anonymous = http
        .get(format!(
            "{}/golden/contact/{golden}",
            pipeline.dashboard_url
        ))
        .send()
        .await
        .expect("page");
    assert_eq!(anonymous.status(), 303);
    pipeline.finish().await;
}

#[tokio::test]
async fn old_buckets_and_report_ids_are_pruned_and_recent_ones_stay() {
    let pipeline = Pipeline::start(Options {
        extra_monitor: "prune_every: 200ms".to_owned(),
        ..Options::default()
    })
    .await;
    let event =
        json!({"type": "contact.created", "data": {"id": "pr-1", "email": "prune@example.com"}});
    assert_eq!(pipeline.send("pr-1", &event).await.0, 200);
    pipeline.wait_drained(WAIT).await;
    wait_delivered(&pipeline, 1.0).await;

    let db = pipeline.db().await;
    let day = 24 * 3600;
    let ago = |days: u64| SystemTime::now() - Duration::from_secs(days * day);
    // Past the defaults (buckets 90 days, report ids 14 days) and just within them.
    for (days, flow) in [(91_u64, "old"), (89, "recent")] {
        let at = ago(days);
        db.execute(
            "INSERT INTO flow_buckets (flow, bucket_start, received) VALUES ($1, date_trunc('hour', $2::timestamptz), 5)",
            &[&flow, &at],
        )
        .await
        .expect("flow bucket");
        db.execute(
            "INSERT INTO source_buckets (source, bucket_start, received) VALUES ($1, date_trunc('hour', $2::timestamptz), 5)",
            &[&flow, &at],
        )
        .await
        .expect("source bucket");
    }
    for (days, id) in [(15_u64, "old-report"), (13, "recent-report")] {
        db.execute(
            "INSERT INTO counted_reports (msg_id, counted_at) VALUES ($1, $2)",
            &[&id, &ago(days)],
        )
        .await
        .expect("report id");
    }

    let deadline = Instant::now() + WAIT;
    loop {
        let left: i64 = db
            .query_one(
                "SELECT (SELECT count(*) FROM flow_buckets WHERE flow = 'old') \
                 + (SELECT count(*) FROM source_buckets WHERE source = 'old') \
                 + (SELECT count(*) FROM counted_reports WHERE msg_id = 'old-report')",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "old rows never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM flow_buckets WHERE flow IN ('recent', $1)) \
             + (SELECT count(*) FROM source_buckets WHERE source IN ('recent', 'demo')) \
             + (SELECT count(*) FROM counted_reports WHERE msg_id = 'recent-report')",
            &[&FLOW],
        )
        .await
        .expect("count")
        .get(0);
    // The recent rows, and today's buckets of the flow and of its source, and the report id.
    assert!(kept >= 5, "recent rows stay: {kept}");
    let today: i64 = db
        .query_one("SELECT count(*) FROM counted_reports", &[])
        .await
        .expect("count")
        .get(0);
    assert!(today >= 3, "today's report ids stay: {today}");
    pipeline.finish().await;
}

/// Waits until monitor's `/metrics` line starting with `line` reads `want`.
async fn wait_metric(pipeline: &Pipeline, line: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = pipeline.metric(Service::Monitor, line).await;
        if seen == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{line} never read {want} (last {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn consumer_lag_and_dead_letter_depth_are_on_metrics() {
    let mut pipeline = Pipeline::start(Options {
        extra_monitor: "backlog_every: 100ms".to_owned(),
        ..Options::default()
    })
    .await;
    // Deliver stopped: the changes wait on its consumer, and monitor shows them as its lag.
    pipeline.stop_service(Service::Deliver).await;
    for n in 0..5 {
        let event = json!({"type": "contact.created", "data": {"id": format!("lag-{n}"), "email": format!("lag.{n}@example.com")}});
        assert_eq!(pipeline.send(&format!("lag-{n}"), &event).await.0, 200);
    }
    let lag = format!("switchyard_consumer_lag_messages{{consumer=\"deliver-{FLOW}\"}}");
    wait_metric(&pipeline, &lag, 5.0).await;
    wait_metric(
        &pipeline,
        "switchyard_consumer_lag_messages{consumer=\"transform\"}",
        0.0,
    )
    .await;

    // The destination refuses them all (400): the backlog drains into the flow's dead letters.
    pipeline.sink.script(&[], 400);
    pipeline.start_service(Service::Deliver).await;
    wait_metric(&pipeline, &lag, 0.0).await;
    wait_metric(
        &pipeline,
        &format!("switchyard_dlq_depth_messages{{stage=\"deliver\",key=\"{FLOW}\"}}"),
        5.0,
    )
    .await;
    // Each stage times its hop: the five changes waited in the stream while deliver was stopped,
    // and each was taken and settled once (a first delivery each).
    let durable = format!("{}-deliver-{FLOW}", pipeline.prefix);
    let waited =
        |what: &str| format!("switchyard_consume_{what}_seconds_count{{consumer=\"{durable}\"}}");
    assert_eq!(
        pipeline.metric(Service::Deliver, &waited("wait")).await,
        Some(5.0)
    );
    assert_eq!(
        pipeline.metric(Service::Deliver, &waited("handling")).await,
        Some(5.0)
    );
    let waited_sum = pipeline
        .metric(
            Service::Deliver,
            &format!("switchyard_consume_wait_seconds_sum{{consumer=\"{durable}\"}}"),
        )
        .await
        .expect("wait sum");
    assert!(
        waited_sum > 0.0,
        "the changes waited while deliver was stopped: {waited_sum}"
    );
    pipeline.finish().await;
}
