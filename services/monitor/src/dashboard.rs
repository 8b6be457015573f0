//! The HTML dashboard: plain server-rendered pages (maud, which escapes every interpolated value)
//! with forms for actions — flows and their health, open alerts, dead letters and their replay,
//! schema drift, identity conflicts, and what monitor knows of a golden record. It reuses the admin
//! API's tokens: logging in swaps a token for a random session id in an HttpOnly, SameSite=Strict
//! cookie, and every read or replay goes through the admin service's own methods, so a replay is
//! audited first exactly as with the CLI.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use switchyard_chassis::config::FlowConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::{CancellationToken, Error};
use switchyard_proto::v1::admin_server::Admin as _;
use switchyard_proto::v1::{ListAlertsRequest, ListDeadLettersRequest, ReplayDeadLetterRequest};
use tonic::Request;

use crate::admin::{AdminService, Auth, Role};
use crate::report;

const COOKIE: &str = "switchyard_session";
/// Sessions end after a working day; logging in again is cheap.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the pages need.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub admin: AdminService,
    pub auth: Auth,
    pub pool: Pool,
    pub flows: Vec<FlowConfig>,
    pub bucket: Duration,
    pub trailing_buckets: u32,
    sessions: Arc<Mutex<HashMap<String, (Role, Instant)>>>,
}

impl Dashboard {
    pub fn new(
        admin: AdminService,
        auth: Auth,
        flows: Vec<FlowConfig>,
        bucket: Duration,
        trailing_buckets: u32,
    ) -> Self {
        Self {
            pool: admin.pool.clone(),
            admin,
            auth,
            flows,
            bucket,
            trailing_buckets,
            sessions: Arc::default(),
        }
    }

    /// Serves the dashboard on `listener` until shutdown.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let app = Router::new()
            .route("/", get(flows_page))
            .route("/login", get(login_page).post(login))
            .route("/logout", axum::routing::post(logout))
            .route("/alerts", get(alerts_page))
            .route("/dlq", get(dlq_page))
            .route("/dlq/{seq}", get(letter_page))
            .route("/dlq/{seq}/replay", get(confirm_page).post(replay))
            .route("/drift", get(drift_page))
            .route("/conflicts", get(review::conflicts_page))
            .route(
                "/conflicts/{id}/merge",
                get(review::confirm_merge).post(review::merge),
            )
            .route(
                "/conflicts/{id}/keep-apart",
                get(review::confirm_keep_apart).post(review::keep_apart),
            )
            .route("/golden", get(golden_lookup))
            .route("/golden/{object}/{id}", get(golden_page))
            // Browsers ask for /favicon.ico whatever the page declares; answer both so the
            // console stays clean.
            .route("/favicon.svg", get(favicon))
            .route("/favicon.ico", get(favicon))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|e| Error::Other(format!("dashboard: {e}")))
    }

    /// The role of the session named by the request's cookie, if it is live.
    fn session(&self, headers: &HeaderMap) -> Option<Role> {
        let id = cookie(headers, COOKIE)?;
        let mut sessions = self.sessions.lock().ok()?;
        sessions.retain(|_, (_, expires)| *expires > Instant::now());
        sessions.get(&id).map(|(role, _)| *role)
    }
}

/// A switch-track glyph: two lines that join, in the dashboard's link colour.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1a4f8b"/><path d="M3 12h10M3 4h3l5 8" stroke="#fff" stroke-width="2" fill="none"/></svg>"##;

/// The icon, for anyone: it says nothing about the hub.
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// A value of the `Cookie` header.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A request to the admin service as the session's role, as its interceptor would have left it.
fn as_role<T>(role: Role, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(role);
    request
}

fn page(title: &str, role: Option<Role>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    link rel="icon" type="image/svg+xml" href="/favicon.svg";
                    title { "Switchyard — " (title) }
                    style { (maud::PreEscaped(CSS)) }
                }
                body {
                    @if let Some(role) = role {
                        nav {
                            a href="/" { "Flows" } " · " a href="/alerts" { "Alerts" } " · "
                            a href="/dlq" { "Dead letters" } " · " a href="/drift" { "Schema drift" } " · "
                            a href="/conflicts" { "Identity review" } " · "
                            a href="/golden" { "Golden record" }
                            form.inline method="post" action="/logout" {
                                " (" (role.as_str()) ") " button type="submit" { "Log out" }
                            }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
        .into_string(),
    )
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}\
.warning{color:#a60}.failing{color:#b00;font-weight:bold}form.inline{display:inline}\
nav{margin-bottom:1em}";

fn error_page(status: StatusCode, role: Option<Role>, message: &str) -> Response {
    (status, page("Error", role, html! { p { (message) } })).into_response()
}

fn utc(t: Option<&switchyard_proto::Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), |t| crate::clock::utc(t.seconds))
}

/// Session required: the page's role, or a redirect to the login form.
macro_rules! session {
    ($dash:expr, $headers:expr) => {
        match $dash.session(&$headers) {
            Some(role) => role,
            None => return Redirect::to("/login").into_response(),
        }
    };
}

mod review;

async fn login_page() -> Response {
    page(
        "Log in",
        None,
        html! {
            form method="post" action="/login" {
                label { "Admin token " input type="password" name="token" autocomplete="off"; }
                " " button type="submit" { "Log in" }
            }
        },
    )
    .into_response()
}

async fn login(State(dash): State<Dashboard>, body: Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(role) = dash.auth.role_of(&token) else {
        return error_page(StatusCode::UNAUTHORIZED, None, "That token is not valid.");
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut sessions) = dash.sessions.lock() {
        sessions.insert(id.clone(), (role, Instant::now() + SESSION_TTL));
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    if let (Some(id), Ok(mut sessions)) = (cookie(&headers, COOKIE), dash.sessions.lock()) {
        sessions.remove(&id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "switchyard_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

/// One flow's row on the flows page.
#[derive(Debug, Default)]
struct FlowRow {
    totals: [i64; 4],
    current: [i64; 4],
    baseline: Option<[f64; 4]>,
    last_delivered: Option<i64>,
    alerts: Vec<(String, String)>,
}

async fn flow_rows(dash: &Dashboard) -> Result<HashMap<String, FlowRow>, String> {
    let client = dash.pool.get().await.map_err(|e| e.to_string())?;
    let mut rows: HashMap<String, FlowRow> = HashMap::new();
    for r in client
        .query("SELECT flow, outcome, count FROM flow_counts", &[])
        .await
        .map_err(|e| e.to_string())?
    {
        let i = match r.get::<_, String>(1).as_str() {
            "received" => 0,
            "delivered" => 1,
            "failed" => 2,
            "dead_lettered" => 3,
            _ => continue,
        };
        rows.entry(r.get(0)).or_default().totals[i] = r.get(2);
    }
    let bucket = i64::try_from(dash.bucket.as_secs()).unwrap_or(3600).max(1);
    let now = switchyard_chassis::unix_now();
    let current = now - now.rem_euclid(bucket);
    let since = current - bucket * i64::from(dash.trailing_buckets);
    for r in client
        .query(
            "SELECT flow, extract(epoch FROM bucket_start)::bigint, received, delivered, failed, \
             dead_lettered FROM flow_buckets WHERE bucket_start >= to_timestamp($1::bigint)",
            &[&since],
        )
        .await
        .map_err(|e| e.to_string())?
    {
        let row = rows.entry(r.get(0)).or_default();
        let counts = [r.get(2), r.get(3), r.get(4), r.get(5)];
        if r.get::<_, i64>(1) == current {
            row.current = counts;
        } else {
            // Summed here, divided by the window below: a bucket without a row had no traffic.
            let sum = row.baseline.get_or_insert([0.0; 4]);
            for (s, c) in sum.iter_mut().zip(counts) {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                {
                    *s += c as f64;
                }
            }
        }
    }
    for row in rows.values_mut() {
        if let Some(sum) = row.baseline.as_mut() {
            for s in sum.iter_mut() {
                *s /= f64::from(dash.trailing_buckets.max(1));
            }
        }
    }
    for r in client
        .query(
            "SELECT flow, extract(epoch FROM last_delivered_at)::bigint FROM flow_freshness",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
    {
        rows.entry(r.get(0)).or_default().last_delivered = Some(r.get(1));
    }
    for r in client
        .query(
            "SELECT id, severity FROM alerts WHERE resolved_at IS NULL",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
    {
        let id: String = r.get(0);
        if let Some(flow) = crate::rules::flow_of(&id) {
            rows.entry(flow.to_owned())
                .or_default()
                .alerts
                .push((id.clone(), r.get(1)));
        }
    }
    Ok(rows)
}

/// ok / warning / failing: failing on an open critical alert or a breached freshness SLA,
/// warning on any other open alert or errors in the current bucket.
fn health(flow: &FlowConfig, row: &FlowRow, now: i64) -> &'static str {
    let stale = flow.freshness_sla.is_some_and(|sla| {
        let sla = i64::try_from(sla.as_secs()).unwrap_or(i64::MAX);
        row.last_delivered.is_none_or(|at| now - at > sla)
    });
    if stale || row.alerts.iter().any(|(_, s)| s == "critical") {
        "failing"
    } else if !row.alerts.is_empty() || row.current[2] + row.current[3] > 0 {
        "warning"
    } else {
        "ok"
    }
}

async fn flows_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let rows = match flow_rows(&dash).await {
        Ok(rows) => rows,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e),
    };
    let now = switchyard_chassis::unix_now();
    let empty = FlowRow::default();
    let cell = |current: i64, baseline: Option<f64>| match baseline {
        Some(b) => format!("{current} (baseline {b:.1})"),
        None => format!("{current} (no baseline yet)"),
    };
    page(
        "Flows",
        Some(role),
        html! {
            p { "Figures are for the current bucket of " (humantime::format_duration(dash.bucket))
                " against the mean of the " (dash.trailing_buckets) " buckets before it; totals since the start." }
            table {
                tr { th { "Flow" } th { "Health" } th { "Received" } th { "Delivered" } th { "Failed" }
                     th { "Dead-lettered" } th { "Last delivery" } th { "Value delivered" } }
                @for flow in &dash.flows {
                    @let row = rows.get(&flow.name).unwrap_or(&empty);
                    @let status = health(flow, row, now);
                    tr data-flow=(flow.name) {
                        td { (flow.name) }
                        td class=(status) { (status)
                            @for (id, _) in &row.alerts { br; a href="/alerts" { (id) } } }
                        @for i in 0..4 {
                            td { (cell(row.current[i], row.baseline.map(|b| b[i])))
                                 br; small { "total " (row.totals[i]) } }
                        }
                        td { (row.last_delivered.map_or_else(|| "never".to_owned(), crate::clock::utc)) }
                        td {
                            @let value = {
                                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                                let delivered = row.totals[1] as f64;
                                report::value(flow, delivered).1
                            };
                            (format!("{value:.2}"))
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

async fn alerts_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let listed = dash
        .admin
        .list_alerts(as_role(
            role,
            ListAlertsRequest {
                open_only: true,
                limit: 500,
            },
        ))
        .await;
    let alerts = match listed {
        Ok(r) => r.into_inner().alerts,
        Err(s) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()),
    };
    page(
        "Open alerts",
        Some(role),
        html! {
            @if alerts.is_empty() { p { "No open alerts." } }
            @else {
                table {
                    tr { th { "Alert" } th { "Severity" } th { "Summary" } th { "Opened" } th { "Runbook section" } }
                    @for a in &alerts {
                        tr { td { (a.id) } td class=(a.severity) { (a.severity) } td { (a.summary) }
                             td { (utc(a.opened_at.as_ref())) } td { code { (a.runbook) } } }
                    }
                }
            }
        },
    )
    .into_response()
}

async fn dlq_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let listed = dash
        .admin
        .list_dead_letters(as_role(
            role,
            ListDeadLettersRequest {
                limit: 1000,
                ..Default::default()
            },
        ))
        .await;
    let letters = match listed {
        Ok(r) => r.into_inner().dead_letters,
        Err(s) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()),
    };
    page(
        "Dead letters",
        Some(role),
        html! {
            @if letters.is_empty() { p { "No dead letters." } }
            @else {
                table {
                    tr { th { "Sequence" } th { "Stage" } th { "Key" } th { "Destination" } th { "Error class" }
                         th { "Reason" } th { "Failed at" } }
                    @for l in &letters {
                        tr { td { a href={ "/dlq/" (l.sequence) } { (l.sequence) } } td { (l.stage) }
                             td { (l.key) } td { (l.destination) } td { (l.error_class) } td { (l.reason) }
                             td { (utc(l.failed_at.as_ref())) } }
                    }
                }
            }
        },
    )
    .into_response()
}

/// One dead letter by its sequence, as the admin API summarises it (never its payload, which
/// may hold personal data), wherever it is in the DLQ.
async fn find_letter(
    dash: &Dashboard,
    role: Role,
    seq: u64,
) -> Result<switchyard_proto::v1::DeadLetterSummary, Response> {
    let found = dash
        .admin
        .get_dead_letter(as_role(
            role,
            switchyard_proto::v1::GetDeadLetterRequest { sequence: seq },
        ))
        .await;
    match found {
        Ok(detail) => detail.into_inner().summary.ok_or_else(|| {
            error_page(
                StatusCode::NOT_FOUND,
                Some(role),
                &format!("No dead letter {seq}."),
            )
        }),
        Err(status) if status.code() == tonic::Code::NotFound => Err(error_page(
            StatusCode::NOT_FOUND,
            Some(role),
            &format!("No dead letter {seq}."),
        )),
        Err(status) => Err(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(role),
            status.message(),
        )),
    }
}

async fn letter_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    let letter = match find_letter(&dash, role, seq).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    page(
        &format!("Dead letter {seq}"),
        Some(role),
        html! {
            table {
                tr { th { "Stage" } td { (letter.stage) } }
                tr { th { "Key" } td { (letter.key) } }
                tr { th { "Destination" } td { (letter.destination) } }
                tr { th { "Error class" } td { (letter.error_class) } }
                tr { th { "Reason" } td { (letter.reason) } }
                tr { th { "Attempts" } td { (letter.attempts) } }
                tr { th { "HTTP status" } td { (letter.http_status) } }
                tr { th { "Original subject" } td { (letter.original_subject) } }
                tr { th { "Failed at" } td { (utc(letter.failed_at.as_ref())) } }
            }
            @if role == Role::Operator {
                form method="get" action={ "/dlq/" (seq) "/replay" } {
                    button type="submit" { "Replay…" }
                }
            } @else {
                p { "Replaying needs the operator token." }
            }
        },
    )
    .into_response()
}

async fn confirm_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    if role != Role::Operator {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(role),
            "Replaying needs the operator token.",
        );
    }
    let letter = match find_letter(&dash, role, seq).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    page(
        &format!("Replay dead letter {seq}?"),
        Some(role),
        html! {
            p { "This publishes the letter back onto " code { (letter.original_subject) }
                " so " (letter.stage) " handles it again. The replay is written to the audit log." }
            form method="post" action={ "/dlq/" (seq) "/replay" } {
                button type="submit" name="confirm" value="yes" { "Replay" }
            }
            p { a href={ "/dlq/" (seq) } { "Cancel" } }
        },
    )
    .into_response()
}

async fn replay(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    if role != Role::Operator {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(role),
            "Replaying needs the operator token.",
        );
    }
    // The admin API's own method: audit log first, then the replay.
    let replayed = dash
        .admin
        .replay_dead_letter(as_role(role, ReplayDeadLetterRequest { sequence: seq }))
        .await;
    match replayed {
        Ok(r) => page(
            &format!("Dead letter {seq} replayed"),
            Some(role),
            html! { p id="replayed" { "Replayed onto " code { (r.into_inner().subject) } "." }
            p { a href="/dlq" { "Back to dead letters" } } },
        )
        .into_response(),
        Err(s) => error_page(StatusCode::BAD_GATEWAY, Some(role), s.message()),
    }
}

async fn drift_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let listed = async {
        let client = dash.pool.get().await.map_err(|e| e.to_string())?;
        client
            .query(
                "SELECT source, path, event_type, change, last_seen_at FROM drift_notices \
                 ORDER BY last_seen_at DESC LIMIT 500",
                &[],
            )
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    let rows = match listed {
        Ok(rows) => rows,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e),
    };
    page(
        "Schema drift",
        Some(role),
        html! {
            @if rows.is_empty() { p { "No schema-drift notices." } }
            @else {
                table {
                    tr { th { "Source" } th { "Path" } th { "Event type" } th { "Change" } th { "Last seen" } }
                    @for r in &rows {
                        @let seen: SystemTime = r.get(4);
                        tr { td { (r.get::<_, String>(0)) } td { (r.get::<_, String>(1)) }
                             td { (r.get::<_, String>(2)) } td { (r.get::<_, String>(3)) }
                             td { (utc(Some(&switchyard_proto::timestamp(seen)))) } }
                    }
                }
            }
        },
    )
    .into_response()
}

/// Dedupe's lineage of a golden record, through the one function dedupe's migrations make
/// (`golden_lineage`, V7): it runs as dedupe's role and answers only ids, versions and times for
/// one record, so monitor reads no table of dedupe's (whose fields hold personal data) and can
/// write none of them. Where each service has its own schema it lives in `dedupe`; in a
/// single-schema installation it is on the search path.
const LINEAGE_COLUMNS: &str =
    "kind, system, object, source_id, event_id, outcome, version, first_seen, last_seen";

/// One row of a golden record's lineage.
#[derive(Debug, Clone, PartialEq)]
struct Lineage {
    /// `record` (the golden record itself), `source` (a source record it was built from) or
    /// `event` (a source event dedupe applied to it).
    kind: String,
    system: String,
    object: String,
    source_id: String,
    event_id: String,
    outcome: String,
    version: Option<i64>,
    first_seen: Option<SystemTime>,
    last_seen: Option<SystemTime>,
}

/// Which source records and events built golden record `id`; empty when it is not a golden id
/// dedupe knows.
async fn lineage(pool: &Pool, id: &str) -> Result<Vec<Lineage>, String> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(Vec::new());
    }
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let separate: bool = client
        .query_one(
            "SELECT to_regprocedure('dedupe.golden_lineage(uuid)') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let function = if separate {
        "dedupe.golden_lineage"
    } else {
        "golden_lineage"
    };
    let rows = client
        .query(
            &format!("SELECT {LINEAGE_COLUMNS} FROM {function}($1::text::uuid)"),
            &[&id],
        )
        .await
        .map_err(|e| format!("lineage: {e}"))?;
    let mut lineage: Vec<Lineage> = rows
        .iter()
        .map(|r| Lineage {
            kind: r.get(0),
            system: r.get(1),
            object: r.get(2),
            source_id: r.get(3),
            event_id: r.get(4),
            outcome: r.get(5),
            version: r.get(6),
            first_seen: r.get(7),
            last_seen: r.get(8),
        })
        .collect();
    // The record first, then its sources by system, then events newest first.
    lineage.sort_by(|a, b| {
        let rank = |l: &Lineage| match l.kind.as_str() {
            "record" => 0,
            "source" => 1,
            _ => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| match a.kind.as_str() {
            "event" => b.last_seen.cmp(&a.last_seen),
            _ => (&a.system, &a.source_id).cmp(&(&b.system, &b.source_id)),
        })
    });
    Ok(lineage)
}

fn seen(at: Option<SystemTime>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |t| utc(Some(&switchyard_proto::timestamp(t))),
    )
}

/// The golden-record lookup: a form for object and id, which leads to the record's page.
async fn golden_lookup(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let role = session!(dash, headers);
    let asked: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let field = |k: &str| asked.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let (Some(object), Some(id)) = (field("object"), field("id")) {
        let path: String = form_urlencoded::byte_serialize(object.as_bytes())
            .chain(["/"])
            .chain(form_urlencoded::byte_serialize(id.as_bytes()))
            .collect();
        return Redirect::to(&format!("/golden/{path}")).into_response();
    }
    page(
        "Golden record",
        Some(role),
        html! {
            form method="get" action="/golden" {
                label { "Object " input name="object" value="contact"; }
                " " label { "Golden id " input name="id" size="40"; }
                " " button type="submit" { "Look up" }
            }
        },
    )
    .into_response()
}

/// What is known of one golden record: the source records and events that built it (dedupe's
/// lineage), its identity conflicts and the merge commands that named it. Never its fields.
async fn golden_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    let role = session!(dash, headers);
    let found = async {
        let client = dash.pool.get().await.map_err(|e| e.to_string())?;
        let conflicts = client
            .query(
                "SELECT event_id, golden_a, golden_b, detail, detected_at, resolved_by FROM conflicts \
                 WHERE object = $1 AND (golden_a = $2 OR golden_b = $2) ORDER BY detected_at DESC LIMIT 200",
                &[&object, &id],
            )
            .await
            .map_err(|e| e.to_string())?;
        let commands = client
            .query(
                "SELECT command_id, kind, survivor, merged, applied, error, received_at FROM identity_commands \
                 WHERE object = $1 AND (survivor = $2 OR merged = $2) ORDER BY received_at DESC LIMIT 200",
                &[&object, &id],
            )
            .await
            .map_err(|e| e.to_string())?;
        // Lineage that cannot be read (a database set up without dedupe's lineage function)
        // leaves the rest of the page.
        let lineage = lineage(&dash.pool, &id).await;
        Ok::<_, String>((conflicts, commands, lineage))
    }
    .await;
    let (conflicts, commands, lineage) = match found {
        Ok(found) => found,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e),
    };
    page(
        &format!("Golden {object} {id}"),
        Some(role),
        html! {
            p { "Where the record came from, as dedupe keeps it; its fields are not shown here." }
            h2 { "Lineage" }
            @if let Err(e) = &lineage {
                p id="lineage-error" { "The lineage cannot be read: " (e) " (see docs/deploy.md, Least privilege on PostgreSQL)." }
            }
            @let lineage: &[Lineage] = lineage.as_deref().unwrap_or_default();
            @let record = lineage.iter().find(|l| l.kind == "record");
            @if let Some(r) = record {
                p id="record" { (r.object) " version " (r.version.unwrap_or_default())
                    ", created " (seen(r.first_seen)) ", last changed " (seen(r.last_seen)) }
            } @else { p id="record" { "Dedupe holds no golden record with this id." } }
            h3 { "Source records" }
            @let sources: Vec<&Lineage> = lineage.iter().filter(|l| l.kind == "source").collect();
            @if sources.is_empty() { p { "None." } }
            @else { table id="sources" {
                tr { th { "System" } th { "Object" } th { "Source id" } th { "First seen" } th { "Last event" } }
                @for l in &sources {
                    tr data-system=(l.system) { td { (l.system) } td { (l.object) } td { (l.source_id) }
                         td { (seen(l.first_seen)) } td { (seen(l.last_seen)) } }
                }
            } }
            h3 { "Source events applied" }
            @let events: Vec<&Lineage> = lineage.iter().filter(|l| l.kind == "event").collect();
            @if events.is_empty() { p { "None kept." } }
            @else { table id="events" {
                tr { th { "Event" } th { "System" } th { "Outcome" } th { "Version" } th { "Processed" } }
                @for l in &events {
                    tr { td { (l.event_id) } td { (l.system) } td { (l.outcome) }
                         td { (l.version.map_or_else(|| "—".to_owned(), |v| v.to_string())) }
                         td { (seen(l.last_seen)) } }
                }
            } }
            h2 { "Identity conflicts" }
            @if conflicts.is_empty() { p { "None seen." } }
            @else { table {
                tr { th { "Event" } th { "Golden A" } th { "Golden B" } th { "Detail" } th { "Detected" } th { "Resolved by" } }
                @for r in &conflicts {
                    @let at: SystemTime = r.get(4);
                    tr { td { (r.get::<_, String>(0)) } td { (r.get::<_, String>(1)) } td { (r.get::<_, String>(2)) }
                         td { (r.get::<_, String>(3)) } td { (utc(Some(&switchyard_proto::timestamp(at)))) }
                         td { (r.get::<_, Option<String>>(5).unwrap_or_default()) } }
                }
            } }
            h2 { "Merges and un-merges" }
            @if commands.is_empty() { p { "None seen." } }
            @else { table {
                tr { th { "Command" } th { "Kind" } th { "Survivor" } th { "Merged" } th { "Applied" } th { "Error" } th { "Received" } }
                @for r in &commands {
                    @let at: SystemTime = r.get(6);
                    tr { td { (r.get::<_, String>(0)) } td { (r.get::<_, String>(1)) } td { (r.get::<_, String>(2)) }
                         td { (r.get::<_, String>(3)) } td { (r.get::<_, bool>(4)) } td { (r.get::<_, String>(5)) }
                         td { (utc(Some(&switchyard_proto::timestamp(at)))) } }
                }
            } }
        },
    )
    .into_response()
}

/// Where the dashboard listens, bound at build time so its address is known before `run`.
pub(crate) async fn bind(
    addr: Option<SocketAddr>,
) -> Result<Option<tokio::net::TcpListener>, Error> {
    match addr {
        Some(addr) => Ok(Some(switchyard_chassis::runtime::bind(addr).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let hostile = "<script>alert(1)</script>\"'&";
        let Html(body) = page(hostile, Some(Role::Read), html! { p { (hostile) } });
        assert!(!body.contains("<script>"));
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"));
    }

    #[test]
    fn health_follows_alerts_freshness_and_current_errors() {
        let flow: FlowConfig = serde_yaml_ng::from_str(
            "{ name: c, object: contact, destination: d, freshness_sla: 1h }",
        )
        .expect("flow");
        let now = 100_000;
        let fresh = FlowRow {
            last_delivered: Some(now - 60),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &fresh, now), "ok");
        let erring = FlowRow {
            current: [2, 1, 0, 1],
            last_delivered: Some(now - 60),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &erring, now), "warning");
        let stale = FlowRow {
            last_delivered: Some(now - 7200),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &stale, now), "failing");
        let alerted = FlowRow {
            last_delivered: Some(now - 60),
            alerts: vec![("error_rate:flow=c".into(), "critical".into())],
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &alerted, now), "failing");
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; switchyard_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
