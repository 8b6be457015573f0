//! Deliver's vendor connectors — HubSpot, Salesforce, Klaviyo, QuickBooks Online, Xero and
//! Stripe — through the whole pipeline against mocks of the vendors' write APIs
//! (`switchyard_integration_tests::vendor_apis`): each request matches the vendor's published
//! API, a retry, redelivery or replay never writes a record twice, and every failure ends as
//! the retry rules say (500 and 429 retried, 401 refreshed once, 400 and 410 dead-lettered).

mod accounting;
mod crm;
mod marketing;
mod payments;
mod retries;

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_integration_tests::vendor_apis::{
    CLIENT_ID, CLIENT_SECRET, Connector, KLAVIYO_KEY, QUICKBOOKS_REALM, Request, STRIPE_KEY,
    VendorApis, XERO_TENANT,
};
use switchyard_integration_tests::{Options, Pipeline};

const WAIT: Duration = Duration::from_secs(90);

/// The variable holding a connector's static credential: its first access token, or its key.
fn secret_var(c: Connector) -> String {
    format!("VA_{}_SECRET", c.name().to_uppercase())
}

fn refresh_var(c: Connector) -> String {
    format!("VA_{}_REFRESH", c.name().to_uppercase())
}

/// The environment every connector test runs with (test values, not secrets).
fn env() -> Vec<(String, String)> {
    let mut env = vec![
        ("VA_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
        ("VA_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
    ];
    for c in Connector::ALL {
        let secret = match c {
            Connector::Klaviyo => KLAVIYO_KEY.to_owned(),
            Connector::Stripe => STRIPE_KEY.to_owned(),
            _ => c.first_access_token(),
        };
        env.push((secret_var(c), secret));
        env.push((refresh_var(c), c.first_refresh_token()));
    }
    env
}

/// A destination of the connector's kind named `name` on the mock: the OAuth vendors with their
/// first access token and a refresh token, Klaviyo and Stripe with their keys. `extra` adds YAML
/// keys (`", source_system: demo"`).
pub(crate) fn destination(apis: &VendorApis, c: Connector, name: &str, extra: &str) -> String {
    let kind = c.name();
    let url = apis.url();
    let secret = secret_var(c);
    let own = match c {
        Connector::Quickbooks => format!(", realm_id: \"{QUICKBOOKS_REALM}\""),
        Connector::Xero => format!(", tenant_id: \"{XERO_TENANT}\""),
        _ => String::new(),
    };
    let oauth = if c.oauth() {
        format!(
            ", token_url: \"{}\", client_id_env: VA_CLIENT_ID, client_secret_env: VA_CLIENT_SECRET, refresh_token_env: {}",
            apis.token_url(c),
            refresh_var(c)
        )
    } else {
        String::new()
    };
    format!(
        "  - {{ name: {name}, kind: {kind}, url: \"{url}\", timeout: 2s, secret_env: {secret}{oauth}{own}{extra} }}"
    )
}

/// A flow line; `extra` adds YAML keys.
pub(crate) fn flow(name: &str, object: &str, destination: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, object: {object}, destination: {destination}, max_attempts: 5, retry_base: 50ms, retry_max: 2s{extra} }}"
    )
}

/// A pipeline with these destinations and flows beside the default sink flow.
pub(crate) async fn start(destinations: &[String], flows: &[String]) -> Pipeline {
    Pipeline::start(Options {
        extra_destinations: destinations.join("\n"),
        extra_flows: flows.join("\n"),
        extra_env: env(),
        ..Options::default()
    })
    .await
}

/// A source timestamp `second` seconds into the test's day: later events win survivorship.
fn at(second: u32) -> String {
    format!("2026-01-05T10:{:02}:{:02}Z", second / 60, second % 60)
}

/// A Standard Webhooks canonical event (`<object>.updated`) from the `demo` source.
pub(crate) fn event(object: &str, second: u32, data: Value) -> Value {
    json!({ "type": format!("{object}.updated"), "timestamp": at(second), "data": data })
}

/// A contact event with `extra` canonical fields.
pub(crate) fn contact(id: &str, email: &str, second: u32, extra: Value) -> Value {
    let mut data = json!({ "id": id, "email": email });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    event("contact", second, data)
}

/// Money as the canonical JSON carries it.
pub(crate) fn money(minor_units: i64) -> Value {
    json!({ "minor_units": minor_units, "currency": "USD" })
}

/// Sends an event and waits until every stage has handled it.
pub(crate) async fn send(pipeline: &Pipeline, id: &str, event: &Value) {
    assert_eq!(pipeline.send(id, event).await.0, 200, "ingest accepts {id}");
    pipeline.wait_drained(WAIT).await;
}

/// The refresh token deliver keeps for a destination.
async fn kept_refresh_token(pipeline: &Pipeline, destination: &str) -> Option<String> {
    pipeline
        .db()
        .await
        .query_opt(
            "SELECT refresh_token FROM destination_oauth_tokens WHERE destination = $1",
            &[&destination],
        )
        .await
        .expect("destination_oauth_tokens")
        .and_then(|row| row.get(0))
}

/// Every request matched the vendor's spec and rules.
pub(crate) fn assert_no_problems(apis: &VendorApis) {
    assert_eq!(
        apis.problems(),
        Vec::<String>::new(),
        "every request matched the vendor's API"
    );
}

/// The statuses the mock answered.
fn statuses(requests: &[Request]) -> Vec<u16> {
    requests.iter().map(|r| r.status).collect()
}

/// The `METHOD /path` lines of requests.
pub(crate) fn lines(requests: &[Request]) -> Vec<String> {
    requests.iter().map(Request::line).collect()
}

/// What makes a repeat of the write the same write at the vendor: the idempotency key (Stripe,
/// Xero), the `requestid` (QuickBooks), or the upsert key (HubSpot email, Salesforce external id
/// in the path, Klaviyo email).
pub(crate) fn write_key(c: Connector, request: &Request) -> String {
    match c {
        Connector::Hubspot => request.body["inputs"][0]["id"].to_string(),
        Connector::Salesforce => request.path.clone(),
        Connector::Klaviyo => request.body["data"]["attributes"]["email"].to_string(),
        Connector::Quickbooks => request.query.get("requestid").cloned().unwrap_or_default(),
        Connector::Xero | Connector::Stripe => request
            .header("idempotency-key")
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The kind of record a contact becomes at the vendor.
fn contact_records(c: Connector) -> &'static str {
    match c {
        Connector::Hubspot => "contacts",
        Connector::Salesforce => "Contact",
        Connector::Klaviyo => "profiles",
        Connector::Quickbooks => "Customer",
        Connector::Xero => "Contacts",
        Connector::Stripe => "customers",
    }
}

/// Whether the record `external_id` of destination `system` leads, in dedupe's crosswalk, to the
/// golden record of the `demo` source's `source_id`.
pub(crate) async fn linked(
    pipeline: &Pipeline,
    system: &str,
    external_id: &str,
    source_id: &str,
) -> bool {
    pipeline
        .db()
        .await
        .query_one(
            "SELECT count(*) = 1 FROM crosswalk x JOIN crosswalk s ON s.golden_id = x.golden_id \
             WHERE x.system = $1 AND x.external_id = $2 AND s.system = 'demo' AND s.external_id = $3",
            &[&system, &external_id, &source_id],
        )
        .await
        .expect("crosswalk")
        .get(0)
}

/// The open conflicts of kind `destination_duplicates` monitor holds: (golden record, detail).
pub(crate) async fn destination_conflicts(pipeline: &Pipeline) -> Vec<(String, String)> {
    pipeline
        .db()
        .await
        .query(
            "SELECT golden_a, detail FROM conflicts \
             WHERE kind = 'destination_duplicates' AND resolved_at IS NULL ORDER BY id",
            &[],
        )
        .await
        .expect("conflicts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
