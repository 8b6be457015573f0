//! The retry rules, the same for every connector (on contacts, which all six take): 500 then
//! success writes one record; a hang past the timeout (the write applied, the answer lost) is
//! retried with the same key (or, by a connector that looks records up before creating them,
//! found and updated) and still writes one; 429 waits at least its `Retry-After`; 401
//! refreshes the OAuth2 token once and succeeds (an API key cannot be refreshed: dead letter);
//! 400 dead-letters with the status and the vendor's reason, and the replayed letter writes
//! once; 410 dead-letters saying the flow is paused, and the flow writes nothing after.

use std::time::Duration;

use serde_json::json;
use switchyard_integration_tests::Pipeline;
use switchyard_integration_tests::vendor_apis::{Connector, Fault, Request, VendorApis};

use super::{
    assert_no_problems, contact, contact_records, destination, flow, kept_refresh_token, send,
    start, statuses, write_key,
};

/// Sends one new contact (its first name is `id`, so vendors that want unique names get them)
/// and returns the writes the connector made for it (its look-ups left out).
async fn step(
    pipeline: &Pipeline,
    apis: &VendorApis,
    c: Connector,
    id: &str,
    second: u32,
) -> Vec<Request> {
    let before = apis.requests(c).len();
    let email = format!("{id}@example.com");
    let event = contact(
        id,
        &email,
        second,
        json!({ "first_name": id, "last_name": "Lovelace" }),
    );
    send(pipeline, id, &event).await;
    writes(&apis.requests(c)[before..])
}

/// The writes among `requests`: a look-up before a write is not one.
fn writes(requests: &[Request]) -> Vec<Request> {
    requests
        .iter()
        .filter(|r| r.method != "GET")
        .cloned()
        .collect()
}

/// Whether a write of a connector that looks records up names the record it updates.
fn names_a_record(c: Connector, write: &Request) -> bool {
    match c {
        // `POST /v1/customers/{id}`
        Connector::Stripe => write.path.starts_with("/v1/customers/"),
        Connector::Quickbooks => write.body["Id"].as_str().is_some_and(|id| !id.is_empty()),
        Connector::Xero => write.body["Contacts"][0]["ContactID"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        _ => false,
    }
}

/// Whether the connector looks a record up by its email before creating one: then the retry of
/// a create whose answer was lost finds what it created, and updates it.
fn looks_up_before_create(c: Connector) -> bool {
    matches!(
        c,
        Connector::Stripe | Connector::Xero | Connector::Quickbooks
    )
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

async fn retry_rules(c: Connector) {
    let apis = VendorApis::start().await;
    let name = c.name();
    let flow_name = format!("{name}-contacts");
    let pipeline = start(
        &[destination(&apis, c, "dest", "")],
        &[flow(&flow_name, "contact", "dest", "")],
    )
    .await;
    let records = || apis.records(c, contact_records(c)).len();

    // 500, then success on the retry: the same write, one record.
    apis.fail_next(c, Fault::Status(500));
    let seen = step(&pipeline, &apis, c, "fivehundred", 1).await;
    assert_eq!(statuses(&seen)[0], 500, "{name}");
    assert!(
        seen.len() == 2 && ok(seen[1].status),
        "{name}: {:?}",
        statuses(&seen)
    );
    assert_eq!(
        write_key(c, &seen[0]),
        write_key(c, &seen[1]),
        "{name}: the retry is the same write"
    );
    assert_eq!(records(), 1, "{name}: one record");

    // The vendor applies the write but the answer never comes: the retry repeats the same key
    // and the vendor answers it without writing again.
    apis.fail_next(c, Fault::Hang);
    let seen = step(&pipeline, &apis, c, "hang", 2).await;
    assert!(
        seen.len() == 2 && ok(seen[1].status),
        "{name}: {:?}",
        statuses(&seen)
    );
    if looks_up_before_create(c) {
        assert!(
            !names_a_record(c, &seen[0]) && names_a_record(c, &seen[1]),
            "{name}: the retry updates the record the lost create made: {} then {}",
            seen[0].line(),
            seen[1].line()
        );
    } else {
        assert_eq!(
            write_key(c, &seen[0]),
            write_key(c, &seen[1]),
            "{name}: the retry is the same write"
        );
    }
    assert_eq!(records(), 2, "{name}: a lost answer does not write twice");
    assert!(
        pipeline.flow_dead_letters(&flow_name).await.is_empty(),
        "{name}: nothing dead-lettered so far"
    );

    // 429 with Retry-After: the retry waits at least that long.
    apis.fail_next(c, Fault::RateLimited { retry_after: 1 });
    let seen = step(&pipeline, &apis, c, "throttled", 3).await;
    assert_eq!(statuses(&seen)[0], 429, "{name}");
    assert!(
        seen.len() == 2 && ok(seen[1].status),
        "{name}: {:?}",
        statuses(&seen)
    );
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "{name}: retried after {gap:?}"
    );
    assert_eq!(records(), 3, "{name}");

    // 401: an OAuth2 token is refreshed once and the write succeeds in the same attempt, the
    // rotated refresh token kept; an API key is refused for good.
    apis.fail_next(c, Fault::RevokeToken);
    let seen = step(&pipeline, &apis, c, "revoked", 4).await;
    if c.oauth() {
        assert_eq!(statuses(&seen)[0], 401, "{name}");
        assert!(
            seen.len() == 2 && ok(seen[1].status),
            "{name}: {:?}",
            statuses(&seen)
        );
        let first = c.first_access_token();
        assert_eq!(seen[0].bearer(), Some(first.as_str()), "{name}");
        assert_eq!(
            seen[1].bearer(),
            Some(format!("{name}-access-1").as_str()),
            "{name}"
        );
        assert_eq!(apis.refreshes(c), 1, "{name}: refreshed once");
        assert_eq!(
            kept_refresh_token(&pipeline, "dest").await,
            Some(apis.refresh_token(c)),
            "{name}: the newest refresh token is kept"
        );
        assert_eq!(records(), 4, "{name}");
    } else {
        assert_eq!(statuses(&seen), [401], "{name}");
        let letters = pipeline.flow_dead_letters(&flow_name).await;
        let (_, letter) = letters.last().expect("a dead letter");
        assert_eq!(letter.http_status, 401, "{name}");
        assert!(
            letter.reason.contains("destination answered 401"),
            "{name}: {}",
            letter.reason
        );
        assert_eq!(records(), 3, "{name}");
    }
    let written = records();

    // 400: dead-lettered at once with the status and the vendor's reason.
    apis.fail_next(c, Fault::Status(400));
    let seen = step(&pipeline, &apis, c, "refused", 5).await;
    assert_eq!(statuses(&seen), [400], "{name}: a refusal is not retried");
    let letters = pipeline.flow_dead_letters(&flow_name).await;
    let (sequence, letter) = letters.last().expect("a dead letter");
    assert_eq!(letter.http_status, 400, "{name}");
    assert_eq!(letter.stage, "deliver");
    assert!(
        letter.reason.contains("destination answered 400")
            && letter.reason.contains("scripted failure"),
        "{name}: {}",
        letter.reason
    );
    assert_eq!(records(), written, "{name}");
    // Replayed once the cause is gone: written once.
    let before = apis.requests(c).len();
    pipeline.replay(*sequence).await;
    pipeline.wait_drained(super::WAIT).await;
    let seen = writes(&apis.requests(c)[before..]);
    assert!(
        seen.len() == 1 && ok(seen[0].status),
        "{name}: {:?}",
        statuses(&seen)
    );
    assert_eq!(records(), written + 1, "{name}");

    // 410: dead-lettered saying the flow is paused; later changes are dead-lettered the same
    // way without calling the vendor.
    apis.fail_next(c, Fault::Status(410));
    let seen = step(&pipeline, &apis, c, "gone", 6).await;
    assert_eq!(statuses(&seen), [410], "{name}");
    let before = apis.requests(c).len();
    step(&pipeline, &apis, c, "after", 7).await;
    assert_eq!(
        apis.requests(c).len(),
        before,
        "{name}: a paused flow calls nothing, not even a look-up"
    );
    let letters = pipeline.flow_dead_letters(&flow_name).await;
    let paused: Vec<_> = letters
        .iter()
        .rev()
        .take(2)
        .map(|(_, l)| (l.http_status, l.reason.as_str()))
        .collect();
    assert_eq!(
        paused,
        [(410, "destination gone (410): flow paused"); 2],
        "{name}"
    );

    assert_no_problems(&apis);
    pipeline.finish().await;
}

#[tokio::test]
async fn hubspot_follows_the_retry_rules() {
    retry_rules(Connector::Hubspot).await;
}

#[tokio::test]
async fn salesforce_follows_the_retry_rules() {
    retry_rules(Connector::Salesforce).await;
}

#[tokio::test]
async fn klaviyo_follows_the_retry_rules() {
    retry_rules(Connector::Klaviyo).await;
}

#[tokio::test]
async fn quickbooks_follows_the_retry_rules() {
    retry_rules(Connector::Quickbooks).await;
}

#[tokio::test]
async fn xero_follows_the_retry_rules() {
    retry_rules(Connector::Xero).await;
}

#[tokio::test]
async fn stripe_follows_the_retry_rules() {
    retry_rules(Connector::Stripe).await;
}
