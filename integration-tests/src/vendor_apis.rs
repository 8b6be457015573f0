//! Mock vendor write APIs for deliver's connectors — HubSpot CRM v3, Salesforce REST, Klaviyo,
//! QuickBooks Online, Xero Accounting and Stripe — on one loopback port, with each OAuth2 token
//! endpoint. Each answers as its vendor documents (Klaviyo and Xero request bodies are checked
//! against the published specs in `testdata/vendor/specs`, Stripe answers with its fixture
//! customer), keeps the records written (upserts by their natural keys, creates once per
//! idempotency key), records every request, and can be scripted to fail: a status (500, 400,
//! 410…), 429 with `Retry-After`, a revoked access token (401 once), or a hang that applies the
//! write and never answers in time (a lost answer).

mod accounting;
mod crm;
mod klaviyo;
pub mod schema;
mod stripe;

use crate::mock_oauth::{self, Tokens};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// The OAuth2 app credentials the token endpoints accept (for every vendor).
pub const CLIENT_ID: &str = "switchyard-deliver-client";
pub const CLIENT_SECRET: &str = "switchyard-deliver-client-secret";
/// Klaviyo's private API key and Stripe's secret key (test values).
pub const KLAVIYO_KEY: &str = "pk_test_0123456789abcdef";
pub const STRIPE_KEY: &str = "sk_test_51Switchyard0123456789";
/// The QuickBooks company and the Xero organisation the mock serves.
pub const QUICKBOOKS_REALM: &str = "9130357992221046";
pub const XERO_TENANT: &str = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f";
/// How long a hang holds the answer: past every destination timeout the tests configure.
pub const HANG: Duration = Duration::from_secs(15);

/// The APIs the mock plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Connector {
    Hubspot,
    Salesforce,
    Klaviyo,
    Quickbooks,
    Xero,
    Stripe,
}

impl Connector {
    pub const ALL: [Self; 6] = [
        Self::Hubspot,
        Self::Salesforce,
        Self::Klaviyo,
        Self::Quickbooks,
        Self::Xero,
        Self::Stripe,
    ];

    /// The destination kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hubspot => "hubspot",
            Self::Salesforce => "salesforce",
            Self::Klaviyo => "klaviyo",
            Self::Quickbooks => "quickbooks",
            Self::Xero => "xero",
            Self::Stripe => "stripe",
        }
    }

    /// Whether the vendor's API takes OAuth2 bearer tokens (Klaviyo and Stripe take API keys).
    pub fn oauth(self) -> bool {
        !matches!(self, Self::Klaviyo | Self::Stripe)
    }

    /// The access token valid from the start (as if issued when the connection was made).
    pub fn first_access_token(self) -> String {
        format!("{}-access-0", self.name())
    }

    /// The refresh token issued when the connection was made.
    pub fn first_refresh_token(self) -> String {
        format!("{}-refresh-1", self.name())
    }

    /// The token endpoint's path (the vendors' own).
    fn token_path(self) -> &'static str {
        match self {
            Self::Hubspot => "/oauth/v3/token",
            Self::Salesforce => "/services/oauth2/token",
            Self::Quickbooks => "/oauth2/v1/tokens/bearer",
            Self::Xero => "/connect/token",
            Self::Klaviyo | Self::Stripe => "/no-oauth",
        }
    }

    /// Intuit and Xero issue a new refresh token on every refresh and refuse the old one.
    fn rotates(self) -> bool {
        matches!(self, Self::Quickbooks | Self::Xero)
    }

    fn of_path(path: &str) -> Option<Self> {
        if path.starts_with("/crm/v3/objects/") {
            Some(Self::Hubspot)
        } else if path.starts_with("/services/data/") {
            Some(Self::Salesforce)
        } else if path.starts_with("/api/") {
            Some(Self::Klaviyo)
        } else if path.starts_with("/v3/company/") {
            Some(Self::Quickbooks)
        } else if path.starts_with("/api.xro/2.0/") {
            Some(Self::Xero)
        } else if path.starts_with("/v1/") {
            Some(Self::Stripe)
        } else {
            None
        }
    }
}

/// A scripted failure for a connector's next write (its look-ups, `GET`s, pass untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status in the vendor's error shape, writing nothing.
    Status(u16),
    /// 429 with `Retry-After: <seconds>`, writing nothing.
    RateLimited { retry_after: u64 },
    /// The presented access token is revoked (as if it expired early): 401, and a refresh
    /// gets a new one. For Klaviyo and Stripe the API key is refused once (401).
    RevokeToken,
    /// Apply the write, then hold the answer for [`HANG`]: the caller times out and never
    /// learns the outcome.
    Hang,
    /// Apply the write, then answer after this long (within the caller's timeout): a slow
    /// vendor, so concurrent writes overlap.
    Slow(Duration),
}

/// One API request the mock received.
#[derive(Debug, Clone)]
pub struct Request {
    pub connector: Connector,
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    /// JSON bodies as sent; Stripe's form bodies as an object of their pairs.
    pub body: Value,
    /// What the mock answered.
    pub status: u16,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The bearer token presented.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// `METHOD /path`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What a vendor handler received.
pub(crate) struct Incoming {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What a vendor handler answers.
pub(crate) struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }
}

/// The mock's state; vendor handlers read and write it under one lock.
#[derive(Default)]
pub(crate) struct Inner {
    requests: Vec<Request>,
    faults: HashMap<Connector, VecDeque<Fault>>,
    token_faults: HashMap<Connector, VecDeque<u16>>,
    tokens: HashMap<Connector, Tokens>,
    /// Records by connector, kind and key (the vendor's id, or the natural key it upserts by).
    records: BTreeMap<(Connector, String), BTreeMap<String, Value>>,
    /// Saved answers by idempotency key (Stripe, Xero) or `requestid` (QuickBooks), with the
    /// request body they answered.
    replays: HashMap<(Connector, String), (Value, Reply)>,
    problems: Vec<String>,
    next_id: u64,
    specs: Option<Arc<Specs>>,
}

/// The published specs the mock checks against.
pub(crate) struct Specs {
    klaviyo: schema::Spec,
    klaviyo_lists: schema::Spec,
    xero: schema::Spec,
    stripe_customer: Value,
}

impl Inner {
    /// A new id, unique across the mock.
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn table(&mut self, connector: Connector, kind: &str) -> &mut BTreeMap<String, Value> {
        self.records
            .entry((connector, kind.to_owned()))
            .or_default()
    }

    fn problem(&mut self, connector: Connector, problem: String) {
        self.problems
            .push(format!("{}: {problem}", connector.name()));
    }

    fn specs(&self) -> Arc<Specs> {
        self.specs.clone().expect("specs loaded at start")
    }
}

type Shared = Arc<Mutex<Inner>>;

/// The running mock.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct VendorApis {
    inner: Shared,
    url: String,
}

impl VendorApis {
    /// Starts on a free loopback port with no records; every OAuth vendor's first access token
    /// is valid.
    pub async fn start() -> Self {
        let specs = Specs {
            klaviyo: schema::Spec::load("specs/klaviyo/profiles.json"),
            klaviyo_lists: schema::Spec::load("specs/klaviyo/lists.json"),
            xero: schema::Spec::load("specs/xero/xero_accounting.yaml"),
            stripe_customer: switchyard_chassis::testkit::vendor_json(
                "specs/stripe/fixtures3.json",
            )["resources"]["customer"]
                .clone(),
        };
        let mut inner = Inner {
            specs: Some(Arc::new(specs)),
            ..Inner::default()
        };
        for connector in Connector::ALL.into_iter().filter(|c| c.oauth()) {
            let mut tokens = Tokens {
                refresh: connector.first_refresh_token(),
                ..Tokens::default()
            };
            tokens.valid.insert(connector.first_access_token());
            inner.tokens.insert(connector, tokens);
        }
        let inner = Arc::new(Mutex::new(inner));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("vendor API mock binds");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, url }
    }

    /// The API base URL (every vendor is served here).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connector's OAuth2 token endpoint.
    pub fn token_url(&self, connector: Connector) -> String {
        format!("{}{}", self.url, connector.token_path())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("vendor API mock lock")
    }

    /// Answers the connector's next write with `fault` (queued after earlier ones).
    pub fn fail_next(&self, connector: Connector, fault: Fault) {
        self.lock()
            .faults
            .entry(connector)
            .or_default()
            .push_back(fault);
    }

    /// Answers the connector's next token refresh with `status` (500: down; 400: `invalid_grant`).
    pub fn fail_next_refresh(&self, connector: Connector, status: u16) {
        self.lock()
            .token_faults
            .entry(connector)
            .or_default()
            .push_back(status);
    }

    /// The connector's API requests so far, oldest first.
    pub fn requests(&self, connector: Connector) -> Vec<Request> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.connector == connector)
            .cloned()
            .collect()
    }

    /// The records of one kind (e.g. HubSpot `contacts`, QuickBooks `Customer`), by key.
    pub fn records(&self, connector: Connector, kind: &str) -> BTreeMap<String, Value> {
        self.lock()
            .records
            .get(&(connector, kind.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Puts a record the vendor already has (e.g. a HubSpot deal a source reported).
    pub fn seed(&self, connector: Connector, kind: &str, key: &str, record: Value) {
        self.lock()
            .table(connector, kind)
            .insert(key.to_owned(), record);
    }

    /// Requests that broke the vendor's spec or rules, each with its reason.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    /// Successful refreshes of the connector's token.
    pub fn refreshes(&self, connector: Connector) -> usize {
        self.lock()
            .tokens
            .get(&connector)
            .map_or(0, |t| t.refreshes)
    }

    /// The refresh token the vendor accepts now.
    pub fn refresh_token(&self, connector: Connector) -> String {
        self.lock()
            .tokens
            .get(&connector)
            .map(|t| t.refresh.clone())
            .unwrap_or_default()
    }

    /// Waits (up to 60 s) until `condition` holds for the mock's requests.
    pub async fn wait_for(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !condition(self) {
            assert!(Instant::now() < deadline, "vendor APIs: never saw {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// An error in the vendor's documented shape.
pub(crate) fn vendor_error(connector: Connector, status: u16, message: &str) -> Reply {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = match connector {
        // developers.hubspot.com/docs/api/error-handling
        Connector::Hubspot => json!({
            "status": "error", "message": message,
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
            "category": match status { 400 => "VALIDATION_ERROR", 401 => "INVALID_AUTHENTICATION", 404 => "OBJECT_NOT_FOUND", 429 => "RATE_LIMITS", _ => "INTERNAL_ERROR" },
        }),
        // REST API Developer Guide, "Status Codes and Error Responses"
        Connector::Salesforce => json!([{
            "message": message,
            "errorCode": match status { 400 => "INVALID_FIELD", 401 => "INVALID_SESSION_ID", 404 => "NOT_FOUND", _ => "UNKNOWN_EXCEPTION" },
        }]),
        // The spec's ClientError / ServerError responses.
        Connector::Klaviyo => json!({"errors": [{
            "id": "7b6a1d8f-4cc7-4c8e-9d64-2f0c3e4c1d01", "status": status, "code": reason.to_lowercase().replace(' ', "_"),
            "title": reason, "detail": message, "source": {"pointer": "/data/"},
        }]}),
        Connector::Quickbooks => json!({
            "Fault": { "Error": [{ "Message": message, "Detail": message, "code": if status == 400 { "2010" } else { "3200" } }],
                       "type": if status == 401 { "AUTHENTICATION" } else if status == 400 { "ValidationFault" } else { "SERVICE" } },
            "time": "2015-07-23T11:07:55.772-07:00",
        }),
        // The spec's 400 `Error` example; other statuses as problem details.
        Connector::Xero if status == 400 => json!({
            "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": [{ "ValidationErrors": [{ "Message": message }] }],
        }),
        Connector::Xero => json!({ "Title": reason, "Status": status, "Detail": message }),
        Connector::Stripe => json!({ "error": {
            "type": if status >= 500 { "api_error" } else { "invalid_request_error" },
            "message": message,
        }}),
    };
    Reply::new(status, body)
}

/// Every request: token endpoints, then scripted faults, credentials, the vendor's handler.
async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    if let Some(connector) = Connector::ALL
        .into_iter()
        .find(|c| c.oauth() && c.token_path() == path)
    {
        return token(&shared, connector, &headers, &body);
    }
    let Some(connector) = Connector::of_path(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let body = if connector == Connector::Stripe {
        Value::Object(
            form_urlencoded::parse(&body)
                .into_owned()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| json!({"unparseable": true}))
    };
    let incoming = Incoming {
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        body,
    };
    let (reply, delay) = {
        let mut inner = shared.lock().expect("vendor API mock lock");
        // Faults are for writes; a connector's look-ups before a write pass untouched.
        let fault = if method == Method::GET {
            None
        } else {
            inner
                .faults
                .get_mut(&connector)
                .and_then(VecDeque::pop_front)
        };
        let reply = match fault {
            Some(Fault::Status(status)) => vendor_error(connector, status, "scripted failure"),
            Some(Fault::RateLimited { retry_after }) => {
                let mut reply =
                    vendor_error(connector, 429, "You have reached your secondly limit.");
                reply.headers.push(("retry-after", retry_after.to_string()));
                reply
            }
            // An API key cannot be refreshed: the vendor refuses it, once.
            Some(Fault::RevokeToken) if !connector.oauth() => {
                vendor_error(connector, 401, "the API key is not valid")
            }
            fault => {
                if fault == Some(Fault::RevokeToken)
                    && let Some(token) = incoming
                        .header("authorization")
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::to_owned)
                    && let Some(tokens) = inner.tokens.get_mut(&connector)
                {
                    tokens.valid.remove(&token);
                }
                match authorise(&inner, connector, &incoming) {
                    Some(refusal) => refusal,
                    None => dispatch(&mut inner, connector, &incoming),
                }
            }
        };
        inner.requests.push(Request {
            connector,
            method: method.to_string(),
            path,
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
            status: reply.status,
            at: Instant::now(),
        });
        let delay = match fault {
            Some(Fault::Hang) => Some(HANG),
            Some(Fault::Slow(delay)) => Some(delay),
            _ => None,
        };
        (reply, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = if reply.status == 204 {
        // No Content has no body, not even `null`.
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(reply.body),
        )
            .into_response()
    };
    for (name, value) in reply.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The vendor's 401 when the credentials are missing or not (or no longer) valid.
fn authorise(inner: &Inner, connector: Connector, incoming: &Incoming) -> Option<Reply> {
    let authorization = incoming.header("authorization").unwrap_or_default();
    let valid = match connector {
        Connector::Klaviyo => authorization == format!("Klaviyo-API-Key {KLAVIYO_KEY}"),
        // Stripe takes the secret key as a bearer token or as the HTTP Basic user name.
        Connector::Stripe => {
            authorization == format!("Bearer {STRIPE_KEY}")
                || authorization
                    == format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{STRIPE_KEY}:"))
                    )
        }
        _ => authorization.strip_prefix("Bearer ").is_some_and(|t| {
            inner
                .tokens
                .get(&connector)
                .is_some_and(|k| k.valid.contains(t))
        }),
    };
    (!valid).then(|| vendor_error(connector, 401, "the access token is expired or invalid"))
}

fn dispatch(inner: &mut Inner, connector: Connector, incoming: &Incoming) -> Reply {
    match connector {
        Connector::Hubspot => crm::hubspot(inner, incoming),
        Connector::Salesforce => crm::salesforce(inner, incoming),
        Connector::Klaviyo => klaviyo::handle(inner, incoming),
        Connector::Quickbooks => accounting::quickbooks(inner, incoming),
        Connector::Xero => accounting::xero(inner, incoming),
        Connector::Stripe => stripe::handle(inner, incoming),
    }
}

/// Answers a repeat of an idempotency key with the saved answer (`None`: not seen before). A
/// key reused with another body is refused, as Stripe documents.
pub(crate) fn replay(
    inner: &mut Inner,
    connector: Connector,
    key: &str,
    body: &Value,
) -> Option<Reply> {
    let (sent, reply) = inner.replays.get(&(connector, key.to_owned()))?;
    if sent != body {
        return Some(vendor_error(
            connector,
            400,
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
        ));
    }
    let mut again = Reply::new(reply.status, reply.body.clone());
    if connector == Connector::Stripe {
        again
            .headers
            .push(("idempotent-replayed", "true".to_owned()));
    }
    Some(again)
}

/// Saves a successful answer under its idempotency key.
pub(crate) fn remember(
    inner: &mut Inner,
    connector: Connector,
    key: &str,
    body: &Value,
    reply: &Reply,
) {
    if (200..300).contains(&reply.status) {
        inner.replays.insert(
            (connector, key.to_owned()),
            (body.clone(), Reply::new(reply.status, reply.body.clone())),
        );
    }
}

/// The OAuth2 refresh-token grant: client credentials as HTTP Basic (Intuit, Xero) or form fields
/// (HubSpot, Salesforce).
fn token(
    shared: &Shared,
    connector: Connector,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let basic = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_ok = if matches!(connector, Connector::Quickbooks | Connector::Xero) {
        basic.as_deref() == Some(&format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    } else {
        form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
    };
    let mut inner = shared.lock().expect("vendor API mock lock");
    if let Some(status) = inner
        .token_faults
        .get_mut(&connector)
        .and_then(VecDeque::pop_front)
    {
        let error = if status == 400 {
            "invalid_grant"
        } else {
            "temporarily_unavailable"
        };
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, axum::Json(json!({ "error": error }))).into_response();
    }
    let tokens = inner.tokens.entry(connector).or_default();
    let (access, refresh) =
        match tokens.grant(connector.name(), client_ok, &form, connector.rotates()) {
            Ok(issued) => issued,
            Err(refusal) => return mock_oauth::refused(refusal),
        };
    // Answer shapes from each vendor's OAuth2 documentation; Salesforce issues no new refresh
    // token and names the instance.
    let body = match connector {
        Connector::Salesforce => json!({
            "access_token": access, "signature": "test", "scope": "api refresh_token",
            "instance_url": "https://example.my.salesforce.com", "id": "https://login.salesforce.com/id/00D/005",
            "token_type": "Bearer", "issued_at": "1700000000000",
        }),
        Connector::Quickbooks => json!({
            "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh,
            "x_refresh_token_expires_in": 8_726_400, "access_token": access,
        }),
        _ => json!({
            "token_type": "bearer", "refresh_token": refresh, "access_token": access, "expires_in": 1800,
        }),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}
