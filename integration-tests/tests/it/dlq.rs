//! Dead letters that say what happened (flow, destination, error class, the destination's
//! answer), listed by filter across pages, shown one by one, and replayed by filter into the flow
//! they came from only — through the admin API and through the `switchyard` binary.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::{MSG_ID, Names, REPLAY_FLOW};
use switchyard_chassis::testkit;
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, FLOW, Options, Pipeline, with_token,
};
use switchyard_proto::Message as _;
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    DeadLetter, DeadLetterSummary, GetDeadLetterRequest, ListAuditRequest, ListContractsRequest,
    ListDeadLettersRequest, ReplayDeadLettersRequest,
};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(60);
/// Changes sent: each dead-letters once in flow `to-a` and once in flow `to-b`.
const CHANGES: usize = 60;
/// Smaller than the letters there are, so listing takes several pages.
const PAGE: u32 = 50;

/// A webhook receiver answering one status (switchable) with one body, counting what it got per
/// `webhook-id` and status.
#[derive(Clone)]
struct Receiver {
    status: Arc<AtomicU16>,
    body: Arc<String>,
    got: Arc<Mutex<Vec<(String, u16)>>>,
    url: String,
    secret: String,
}

impl Receiver {
    async fn start(status: u16, body: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let receiver = Self {
            status: Arc::new(AtomicU16::new(status)),
            body: Arc::new(body.to_owned()),
            got: Arc::default(),
            url,
            secret: testkit::random_secret(),
        };
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered 2xx, per webhook id.
    fn accepted(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (id, status) in self.got.lock().expect("lock").iter() {
            if (200..300).contains(status) {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
        counts
    }

    fn total(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> (StatusCode, String) {
    let status = r.status.load(Ordering::SeqCst);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    r.got.lock().expect("lock").push((id, status));
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        r.body.as_str().to_owned(),
    )
}

/// Polls `check` until it holds (or fails the test after `within`).
async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every letter matching `request`, following the pages; also answers how many pages it took.
async fn list_all(
    client: &mut AdminClient<Channel>,
    token: &str,
    mut request: ListDeadLettersRequest,
) -> (Vec<DeadLetterSummary>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_dead_letters(with_token(request.clone(), token))
            .await
            .expect("dead letters")
            .into_inner();
        pages += 1;
        assert!(page.dead_letters.len() <= request.limit as usize);
        all.extend(page.dead_letters);
        if page.next_after_sequence == 0 {
            return (all, pages);
        }
        request.after_sequence = page.next_after_sequence;
    }
}

fn filter(f: impl FnOnce(&mut ListDeadLettersRequest)) -> ListDeadLettersRequest {
    let mut request = ListDeadLettersRequest {
        limit: PAGE,
        ..Default::default()
    };
    f(&mut request);
    request
}

fn sequences<'a>(letters: impl IntoIterator<Item = &'a DeadLetterSummary>) -> Vec<u64> {
    let mut s: Vec<u64> = letters.into_iter().map(|l| l.sequence).collect();
    s.sort_unstable();
    s
}

#[tokio::test]
async fn dead_letters_are_listed_by_filter_and_replayed_into_their_own_flow_only() {
    // Flow to-a's destination fails (500) until fixed; flow to-b's refuses every change (400)
    // with a body longer than a dead letter keeps, ending in multi-byte characters.
    let a = Receiver::start(500, "upstream exploded").await;
    let refusal = format!(
        "{{\"error\":\"invalid\",\"detail\":\"{}é€\"}}",
        "x".repeat(500)
    );
    let b = Receiver::start(400, &refusal).await;
    let destination = |name: &str, r: &Receiver, env: &str| {
        format!(
            "  - {{ name: {name}, kind: webhook, url: \"{}/hooks\", secret_env: {env}, timeout: 2s, circuit_breaker: {{ failures: 100000 }} }}",
            r.url
        )
    };
    let pipeline = Pipeline::start(Options {
        extra_destinations: [destination("dest-a", &a, "A_SECRET"), destination("dest-b", &b, "B_SECRET")].join("\n"),
        extra_flows: [
            "  - { name: to-a, object: contact, destination: dest-a, max_attempts: 2, retry_base: 50ms, retry_max: 200ms }",
            "  - { name: to-b, object: contact, destination: dest-b, max_attempts: 2, retry_base: 50ms, retry_max: 200ms }",
        ]
        .join("\n"),
        extra_env: vec![
            ("A_SECRET".to_owned(), a.secret.clone()),
            ("B_SECRET".to_owned(), b.secret.clone()),
        ],
        ..Options::default()
    })
    .await;
    let started = SystemTime::now() - Duration::from_secs(1);
    for i in 0..CHANGES {
        let event = json!({"type": "contact.created", "data": {"id": format!("crm-{i}"), "email": format!("dl{i}@example.com")}});
        assert_eq!(pipeline.send(&format!("dl-{i}"), &event).await.0, 200);
    }
    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let everything = filter(|_| {});
    until("every change dead-lettered in both flows", WAIT, || {
        let mut client = client.clone();
        let everything = everything.clone();
        async move {
            list_all(&mut client, ADMIN_READ_TOKEN, everything)
                .await
                .0
                .len()
                >= 2 * CHANGES
        }
    })
    .await;
    pipeline.wait_drained(WAIT).await;

    // All of them, page after page: nothing cut off at a page.
    let (all, pages) = list_all(&mut client, ADMIN_READ_TOKEN, everything.clone()).await;
    assert_eq!(all.len(), 2 * CHANGES);
    assert!(pages >= 3, "{pages} pages of {PAGE}");
    assert_eq!(
        sequences(&all).len(),
        sequences(&all).iter().collect::<HashSet<_>>().len()
    );

    // What each flow's letters say.
    let of_a: Vec<_> = all.iter().filter(|l| l.key == "to-a").collect();
    let of_b: Vec<_> = all.iter().filter(|l| l.key == "to-b").collect();
    assert_eq!((of_a.len(), of_b.len()), (CHANGES, CHANGES));
    for l in &of_a {
        assert_eq!(
            (
                l.stage.as_str(),
                l.destination.as_str(),
                l.error_class.as_str(),
                l.http_status,
                l.attempts
            ),
            ("deliver", "dest-a", "server_error", 500, 2),
            "{l:?}"
        );
    }
    for l in &of_b {
        assert_eq!(
            (
                l.destination.as_str(),
                l.error_class.as_str(),
                l.http_status,
                l.attempts
            ),
            ("dest-b", "client_error", 400, 1),
            "{l:?}"
        );
    }

    // Each filter answers exactly the letters it names.
    let cases: Vec<(&str, ListDeadLettersRequest, Vec<u64>)> = vec![
        (
            "flow",
            filter(|r| r.key = "to-a".into()),
            sequences(of_a.iter().copied()),
        ),
        (
            "destination",
            filter(|r| r.destination = "dest-b".into()),
            sequences(of_b.iter().copied()),
        ),
        (
            "error class",
            filter(|r| r.error_class = "server_error".into()),
            sequences(of_a.iter().copied()),
        ),
        (
            "error class",
            filter(|r| r.error_class = "client_error".into()),
            sequences(of_b.iter().copied()),
        ),
        (
            "flow and class",
            filter(|r| {
                r.key = "to-a".into();
                r.error_class = "client_error".into();
            }),
            vec![],
        ),
        (
            "stage",
            filter(|r| r.stage = "deliver".into()),
            sequences(&all),
        ),
        (
            "other stage",
            filter(|r| r.stage = "transform".into()),
            vec![],
        ),
        (
            "since the start",
            filter(|r| r.since = Some(started.into())),
            sequences(&all),
        ),
        (
            "until the start",
            filter(|r| r.until = Some(started.into())),
            vec![],
        ),
    ];
    for (what, request, expected) in cases {
        let (got, _) = list_all(&mut client, ADMIN_READ_TOKEN, request).await;
        assert_eq!(sequences(&got), expected, "filter by {what}");
    }
    // A time range splits the letters where their failure times do.
    let mut times: Vec<_> = all
        .iter()
        .map(|l| l.failed_at.expect("failed_at"))
        .collect();
    times.sort_by_key(|t| (t.seconds, t.nanos));
    let middle = times[times.len() / 2];
    let at = |t: &switchyard_proto::Timestamp| (t.seconds, t.nanos);
    let (since, _) = list_all(
        &mut client,
        ADMIN_READ_TOKEN,
        filter(|r| r.since = Some(middle)),
    )
    .await;
    let (before, _) = list_all(
        &mut client,
        ADMIN_READ_TOKEN,
        filter(|r| r.until = Some(middle)),
    )
    .await;
    let expected_since: Vec<_> = all
        .iter()
        .filter(|l| at(l.failed_at.as_ref().expect("at")) >= at(&middle))
        .collect();
    assert_eq!(sequences(&since), sequences(expected_since));
    assert_eq!(since.len() + before.len(), all.len());
    let unknown = client
        .list_dead_letters(with_token(
            filter(|r| r.error_class = "bad_luck".into()),
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("unknown class");
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);

    // One letter in full: the trimmed answer (never more than 512 bytes, whole characters) and,
    // for operators only, the original change as JSON (it is a customer's record).
    let read_only = client
        .get_dead_letter(with_token(
            GetDeadLetterRequest {
                sequence: of_b[0].sequence,
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("read role may show")
        .into_inner();
    assert_eq!(read_only.payload_type, "switchyard.v1.GoldenChange");
    assert!(read_only.payload_size > 0);
    assert_eq!(read_only.payload_json, "", "no record for read-only tokens");
    let detail = client
        .get_dead_letter(with_token(
            GetDeadLetterRequest {
                sequence: of_b[0].sequence,
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect("operators may show")
        .into_inner();
    assert_eq!(detail.response_body, read_only.response_body);
    assert!(
        detail.response_body.len() <= 512,
        "{}",
        detail.response_body.len()
    );
    assert!(refusal.starts_with(&detail.response_body));
    assert!(detail.response_body.starts_with("{\"error\":\"invalid\""));
    assert_eq!(detail.payload_type, "switchyard.v1.GoldenChange");
    let change: serde_json::Value = serde_json::from_str(&detail.payload_json).expect("JSON");
    assert_eq!(change["object_type"], "contact");
    assert!(!change["change_id"].as_str().unwrap_or_default().is_empty());
    let detail_a = client
        .get_dead_letter(with_token(
            GetDeadLetterRequest {
                sequence: of_a[0].sequence,
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("show")
        .into_inner();
    assert_eq!(detail_a.response_body, "upstream exploded");

    // Read-only: contracts yes, replay no (and nothing audited for the refusal).
    let contracts = client
        .list_contracts(with_token(ListContractsRequest {}, ADMIN_READ_TOKEN))
        .await
        .expect("read role may list contracts")
        .into_inner()
        .contracts;
    let contact = contracts
        .iter()
        .find(|c| c.object == "contact")
        .expect("contact contract");
    assert!(
        contact.version >= 1 && contact.field_count > 0,
        "{contact:?}"
    );
    let replay_a = ReplayDeadLettersRequest {
        key: "to-a".into(),
        error_class: "server_error".into(),
        ..Default::default()
    };
    let refused = client
        .replay_dead_letters(with_token(replay_a.clone(), ADMIN_READ_TOKEN))
        .await
        .expect_err("read role cannot replay");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let unfiltered = client
        .replay_dead_letters(with_token(
            ReplayDeadLettersRequest::default(),
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect_err("the whole DLQ at once");
    assert_eq!(unfiltered.code(), tonic::Code::InvalidArgument);

    // Fixed: replaying flow to-a's server errors delivers each of its changes exactly once, and
    // flow to-b's destination hears nothing of it.
    a.answer(200);
    let b_before = b.total();
    let done = client
        .replay_dead_letters(with_token(replay_a.clone(), ADMIN_OPERATOR_TOKEN))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(
        (done.matched, done.replayed),
        (CHANGES as u64, CHANGES as u64)
    );
    until("flow to-a delivered every replayed change", WAIT, || {
        let n = a.accepted().len();
        async move { n >= CHANGES }
    })
    .await;
    pipeline.wait_drained(WAIT).await;
    let accepted = a.accepted();
    assert_eq!(accepted.len(), CHANGES);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert_eq!(
        b.total(),
        b_before,
        "flow to-b's destination got nothing from the replay"
    );

    // The same replay again delivers nothing new.
    let again = client
        .replay_dead_letters(with_token(replay_a.clone(), ADMIN_OPERATOR_TOKEN))
        .await
        .expect("replayed again")
        .into_inner();
    assert_eq!(again.matched, CHANGES as u64);
    assert_eq!(again.replayed + again.already_replayed, CHANGES as u64);
    pipeline.wait_drained(WAIT).await;
    assert_eq!(a.accepted(), accepted, "nothing delivered twice");

    // Even a replay JetStream cannot recognise as a repeat (after its duplicate window, say)
    // reaches the destination no second time: deliver's record of deliveries stops it.
    let nats = async_nats::connect(&pipeline.nats_url).await.expect("nats");
    let letter = stored_letter(&pipeline, of_a[0].sequence).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MSG_ID, "replay:late:1");
    headers.insert(REPLAY_FLOW, "to-a");
    let js = async_nats::jetstream::new(nats);
    js.publish_with_headers(
        letter.original_subject.clone(),
        headers,
        letter.payload.clone().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    pipeline.wait_drained(WAIT).await;
    assert_eq!(a.accepted(), accepted, "the change was delivered before");
    assert_eq!(b.total(), b_before);
    let db = pipeline.db().await;
    let delivered: i64 = db
        .query_one("SELECT count(*) FROM deliveries WHERE flow = 'to-a'", &[])
        .await
        .expect("deliveries")
        .get(0);
    assert_eq!(delivered, CHANGES as i64);

    // Every replay command is audited with its filter and count; the refused one is not.
    let audit = client
        .list_audit(with_token(
            ListAuditRequest { limit: 1000 },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let replays: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "dlq.replay_matching")
        .collect();
    assert_eq!(replays.len(), 2, "{replays:?}");
    for e in &replays {
        assert_eq!(e.role, "operator");
        assert!(
            e.target.contains("key=to-a") && e.target.contains("error_class=server_error"),
            "{e:?}"
        );
        assert!(e.detail.contains(&format!("matched {CHANGES}")), "{e:?}");
    }
    pipeline.finish().await;
}

/// The stored dead letter at `sequence`, straight from the DLQ stream.
async fn stored_letter(pipeline: &Pipeline, sequence: u64) -> DeadLetter {
    let nats = async_nats::connect(&pipeline.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let stream = js
        .get_stream(Names::new(&pipeline.prefix).stream(switchyard_chassis::bus::StreamKind::Dlq))
        .await
        .expect("DLQ stream");
    let stored = stream.get_raw_message(sequence).await.expect("letter");
    DeadLetter::decode(stored.payload.as_ref()).expect("a DeadLetter")
}

/// `switchyard`, built beside this test binary (`cargo build -p switchyard-cli`), or
/// `SWITCHYARD_CLI_BIN`.
pub(crate) fn cli_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_CLI_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("switchyard"))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p switchyard-cli` or set SWITCHYARD_CLI_BIN",
        path.display()
    );
    path
}

/// Runs `switchyard admin …` with `token`; answers whether it succeeded, and its output.
pub(crate) async fn cli(pipeline: &Pipeline, token: &str, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(cli_binary())
        .arg("admin")
        .args([
            "--admin",
            &pipeline.admin_url,
            "--token-env",
            "SWITCHYARD_TEST_ADMIN_TOKEN",
        ])
        .args(args)
        .env("SWITCHYARD_TEST_ADMIN_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("switchyard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn the_cli_lists_shows_and_replays_dead_letters_and_lists_contracts() {
    let pipeline = Pipeline::start(Options::default()).await;
    // The destination refuses the first two writes: two dead letters.
    pipeline.sink.script(&[400, 400], 200);
    for i in 0..2 {
        let event = json!({"type": "contact.created", "data": {"id": format!("cli-{i}"), "email": format!("cli{i}@example.com")}});
        assert_eq!(pipeline.send(&format!("cli-{i}"), &event).await.0, 200);
    }
    pipeline.sink.wait_for(2, WAIT).await;
    pipeline.wait_drained(WAIT).await;

    let (ok, out) = cli(
        &pipeline,
        ADMIN_READ_TOKEN,
        &[
            "dlq",
            "list",
            "--flow",
            FLOW,
            "--error-class",
            "client_error",
            "--since",
            "1h",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let lines: Vec<_> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("client_error") && l.contains(FLOW)),
        "{out}"
    );
    assert!(out.contains("2 dead letter(s)"), "{out}");
    let (ok, out_none) = cli(
        &pipeline,
        ADMIN_READ_TOKEN,
        &["dlq", "list", "--error-class", "server_error"],
    )
    .await;
    assert!(ok && out_none.contains("0 dead letter(s)"), "{out_none}");

    let sequence = lines[0]
        .trim_start_matches('#')
        .split_whitespace()
        .next()
        .expect("sequence")
        .to_owned();
    let (ok, shown) = cli(&pipeline, ADMIN_OPERATOR_TOKEN, &["dlq", "show", &sequence]).await;
    assert!(ok, "{shown}");
    assert!(shown.contains("error class  client_error"), "{shown}");
    assert!(shown.contains("http status  400"), "{shown}");
    assert!(shown.contains("switchyard.v1.GoldenChange"), "{shown}");
    assert!(shown.contains("\"change_id\""), "{shown}");

    let (ok, contracts) = cli(&pipeline, ADMIN_READ_TOKEN, &["contracts"]).await;
    assert!(ok, "{contracts}");
    assert!(
        contracts.lines().any(|l| l.starts_with("contact ")),
        "{contracts}"
    );

    let (ok, refused) = cli(
        &pipeline,
        ADMIN_READ_TOKEN,
        &["dlq", "replay", "--flow", FLOW, "--yes"],
    )
    .await;
    assert!(!ok, "{refused}");
    assert!(refused.contains("operator"), "{refused}");
    let (ok, replayed) = cli(
        &pipeline,
        ADMIN_OPERATOR_TOKEN,
        &["dlq", "replay", "--flow", FLOW, "--yes"],
    )
    .await;
    assert!(ok, "{replayed}");
    assert!(replayed.contains("replayed 2 dead letter(s)"), "{replayed}");
    pipeline.sink.wait_for(4, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let accepted = pipeline
        .sink
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(accepted, 2);
    pipeline.finish().await;
}
