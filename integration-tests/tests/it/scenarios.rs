//! The seed's scenario flows end to end (`config/scenarios.example.yaml`): a new lead in the CRM
//! becomes one subscribed marketing profile with its consent source, a won deal becomes one
//! QuickBooks invoice (its customer created first), each sent twice without a second write; and
//! deliver killed while a write is in flight writes nothing twice once it is back.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_integration_tests::Service;
use switchyard_integration_tests::vendor_apis::{Connector, Fault, QUICKBOOKS_REALM, VendorApis};

use crate::connectors::{
    assert_no_problems, contact, destination, event, flow, lines, money, send, start, write_key,
};

const LIST: &str = "Y6nRLr";

/// The scenario's lead flow: only leads who gave marketing consent reach the marketing tool.
fn lead_flow() -> String {
    flow(
        "leads-to-klaviyo",
        "contact",
        "marketing",
        &format!(", list_id: {LIST}, when: {{ lifecycle_stage: lead, marketing_consent: true }}"),
    )
}

#[tokio::test]
async fn a_new_lead_becomes_one_subscribed_profile_with_its_consent_source() {
    let c = Connector::Klaviyo;
    let apis = VendorApis::start().await;
    let pipeline = start(&[destination(&apis, c, "marketing", "")], &[lead_flow()]).await;
    let lead = contact(
        "crm-1",
        "ada@example.com",
        1,
        json!({"first_name": "Ada", "last_name": "Lovelace", "lifecycle_stage": "lead",
            "marketing_consent": true, "consent_source": "webinar signup"}),
    );
    send(&pipeline, "lead-1", &lead).await;
    // The CRM redelivers the same webhook (same id) ...
    send(&pipeline, "lead-1", &lead).await;
    // ... and sends the same lead again under a new id: the same record, no change to write.
    send(&pipeline, "lead-1-again", &lead).await;
    // A customer and a lead without consent are not the flow's business.
    send(
        &pipeline,
        "cust-1",
        &contact(
            "crm-2",
            "bob@example.com",
            2,
            json!({"lifecycle_stage": "customer", "marketing_consent": true}),
        ),
    )
    .await;
    send(
        &pipeline,
        "lead-2",
        &contact(
            "crm-3",
            "cy@example.com",
            3,
            json!({"lifecycle_stage": "lead", "marketing_consent": false}),
        ),
    )
    .await;

    let seen = apis.requests(c);
    assert_eq!(
        lines(&seen),
        [
            "POST /api/profile-import",
            "POST /api/profile-subscription-bulk-create-jobs"
        ],
        "one profile and one subscription, for Ada only"
    );
    assert_eq!(
        seen[0].body["data"]["attributes"]["email"],
        "ada@example.com"
    );
    let subscription = &seen[1].body["data"];
    assert_eq!(
        subscription["attributes"]["custom_source"],
        "webinar signup"
    );
    assert_eq!(
        subscription["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"],
        json!({"email": {"marketing": {"consent": "SUBSCRIBED"}}})
    );
    assert_eq!(subscription["relationships"]["list"]["data"]["id"], LIST);
    assert_eq!(apis.records(c, "profiles").len(), 1);
    assert_eq!(apis.records(c, "subscriptions").len(), 1);
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// A deal of the `demo` CRM at `stage`, for a contact QuickBooks has never seen.
fn deal(stage: &str, second: u32) -> Value {
    event(
        "deal",
        second,
        json!({"id": "deal-7", "name": "Northwind tents", "stage": stage, "amount": money(36_000),
        "contact_id": "crm-7", "close_date": "2026-01-05",
        "line_items": [
            {"sku": "TENT-2P", "description": "Two-person tent", "quantity": 2, "unit_price": money(12_500)},
            {"sku": "MAT-1", "description": "Sleeping mat", "quantity": 4, "unit_price": money(2_750)}
        ]}),
    )
}

#[tokio::test]
async fn a_won_deal_becomes_one_quickbooks_invoice_after_its_customer() {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(&apis, c, "books", "")],
        &[flow("won-deals-to-quickbooks", "deal", "books", "")],
    )
    .await;
    let company = format!("/v3/company/{QUICKBOOKS_REALM}");
    send(&pipeline, "deal-open", &deal("qualified", 1)).await;
    assert!(apis.requests(c).is_empty(), "a deal not won writes nothing");
    let won = deal("won", 2);
    send(&pipeline, "deal-won", &won).await;
    send(&pipeline, "deal-won", &won).await;
    send(&pipeline, "deal-won-again", &won).await;

    let seen = apis.requests(c);
    assert_eq!(
        lines(&seen),
        [
            format!("POST {company}/customer"),
            format!("POST {company}/invoice")
        ],
        "the customer first, then one invoice"
    );
    assert_eq!(seen[0].body, json!({"DisplayName": "demo customer crm-7"}));
    let customer = apis
        .records(c, "Customer")
        .into_keys()
        .next()
        .expect("the customer");
    let invoice = &seen[1].body;
    assert_eq!(invoice["CustomerRef"]["value"], json!(customer));
    assert_eq!(
        invoice["Line"],
        json!([
            {"DetailType": "SalesItemLineDetail", "Amount": 250.0, "Description": "Two-person tent",
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 125.0}},
            {"DetailType": "SalesItemLineDetail", "Amount": 110.0, "Description": "Sleeping mat",
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 4, "UnitPrice": 27.5}}
        ])
    );
    let total: f64 = invoice["Line"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["Amount"].as_f64())
        .sum();
    assert!(
        (total - 360.0).abs() < f64::EPSILON,
        "lines add up to the deal's amount"
    );
    assert_ne!(write_key(c, &seen[0]), write_key(c, &seen[1]));
    assert_eq!(apis.records(c, "Customer").len(), 1);
    assert_eq!(apis.records(c, "Invoice").len(), 1);
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// How deliver dies mid-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    /// The in-process deliver task is aborted wherever it is.
    Abort,
    /// The real `switchyard-deliver` binary, run as a child process, gets SIGKILL.
    Sigkill,
}

/// The `switchyard-deliver` binary: `SWITCHYARD_DELIVER_BIN` (scripts/test.sh builds it and sets
/// this), else the one beside this test binary in the same target directory.
fn deliver_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_DELIVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/it-… → target/debug/switchyard-deliver
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("switchyard-deliver"))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p switchyard-deliver` (scripts/test.sh does) or set SWITCHYARD_DELIVER_BIN",
        path.display()
    );
    path
}

/// A child process killed when dropped, so a failing assertion leaves no deliver running.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deliver dies while the webhook sink and QuickBooks have each applied a write but not yet
/// answered (as if the process died between the vendor's write and its ack); the restarted
/// deliver redelivers both changes with the same `webhook-id` and `requestid`, so each
/// destination still holds exactly one record.
async fn deliver_dies_mid_write(death: Death) {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let mut pipeline = start(
        &[destination(&apis, c, "books", "")],
        &[flow("qb-customers", "contact", "books", "")],
    )
    .await;
    let mut child = match death {
        Death::Abort => None,
        Death::Sigkill => {
            pipeline.stop_service(Service::Deliver).await;
            Some(Reaped(pipeline.spawn_binary(&deliver_binary())))
        }
    };
    // Both destinations record the request, then hold the answer.
    pipeline.sink.hang(Some(Duration::from_secs(60)));
    apis.fail_next(c, Fault::Hang);
    let jane = contact(
        "crm-1",
        "jane@example.com",
        1,
        json!({"first_name": "Jane", "last_name": "Doe"}),
    );
    assert_eq!(pipeline.send("c1", &jane).await.0, 200);
    pipeline.sink.wait_for(1, Duration::from_secs(60)).await;
    apis.wait_for("QuickBooks got the write", |a| !a.requests(c).is_empty())
        .await;

    // No retry yet: deliver dies with its first write still unanswered.
    assert_eq!(pipeline.sink.received().len(), 1, "killed mid-write");
    match child.as_mut() {
        None => pipeline.abort_service(Service::Deliver).await,
        Some(process) => {
            // std's `Child::kill` is SIGKILL on Unix: no destructor, no nak, no flush.
            process.0.kill().expect("SIGKILL deliver");
            let status = process.0.wait().expect("deliver reaped");
            assert!(!status.success(), "deliver was killed: {status}");
        }
    }
    pipeline.sink.hang(None);
    match child.as_mut() {
        None => pipeline.start_service(Service::Deliver).await,
        Some(process) => process.0 = pipeline.spawn_binary(&deliver_binary()),
    }
    pipeline.wait_drained(Duration::from_secs(120)).await;

    let received = pipeline.sink.received();
    assert!(received.len() >= 2, "the sink's write was sent again");
    assert!(
        received
            .iter()
            .all(|r| r.webhook_id == received[0].webhook_id),
        "every attempt carries the same webhook-id, so the receiver keeps one"
    );
    let seen = apis.requests(c);
    assert!(seen.len() >= 2, "the QuickBooks write was sent again");
    assert!(
        seen.iter()
            .all(|r| write_key(c, r) == write_key(c, &seen[0])),
        "every attempt carries the same requestid"
    );
    assert_eq!(apis.records(c, "Customer").len(), 1, "one customer");
    assert_no_problems(&apis);
    drop(child);
    pipeline.finish().await;
}

#[tokio::test]
async fn deliver_aborted_mid_write_writes_nothing_twice() {
    deliver_dies_mid_write(Death::Abort).await;
}

#[tokio::test]
async fn deliver_sigkilled_mid_write_writes_nothing_twice() {
    deliver_dies_mid_write(Death::Sigkill).await;
}
