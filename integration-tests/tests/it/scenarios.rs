//! The seed's scenario flows end to end (`config/scenarios.example.yaml`): a new lead in the CRM
//! becomes one subscribed marketing profile with its consent source, a won deal becomes one
//! QuickBooks invoice (its customer created first), a paid Stripe invoice wins its HubSpot deal
//! and adds the paying customer to a Klaviyo nurture list, each sent twice without a second
//! write; and deliver killed while a write is in flight writes nothing twice once it is back.

use std::path::PathBuf;
use std::time::Duration;

use prost::Message as _;
use serde_json::{Value, json};
use switchyard_chassis::bus::StreamKind;
use switchyard_chassis::testkit;
use switchyard_integration_tests::vendor_apis::{
    Connector, Fault, QUICKBOOKS_REALM, Request, VendorApis,
};
use switchyard_integration_tests::{Pipeline, STRIPE_SECRET, Service};
use switchyard_proto::v1::{CrosswalkLink, DeadLetter, GoldenChange};

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

/// The Klaviyo list paying customers are added to (post-sale nurture).
const NURTURE: &str = "XpaidR";
/// The deal's id: in the `demo` source, which stands for the HubSpot portal
/// (`source_system: demo`), so it is also the HubSpot deal id.
const HUBSPOT_DEAL: &str = "58213";

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs a Stripe-signed event to ingest's `stripe` source and waits until it is handled.
async fn send_stripe(pipeline: &Pipeline, event: &Value) {
    let body = serde_json::to_vec(event).expect("json");
    let t = switchyard_chassis::unix_now().to_string();
    let headers = [
        ("content-type", "application/json".to_owned()),
        (
            "stripe-signature",
            format!(
                "t={t},v1={}",
                hex_hmac(STRIPE_SECRET, &[t.as_bytes(), b".", &body])
            ),
        ),
    ];
    assert_eq!(pipeline.send_to("stripe", &headers, &body).await.0, 200);
    pipeline.wait_drained(Duration::from_secs(90)).await;
}

/// A Stripe invoice event built from Stripe's published invoice fixture (customer
/// `cus_QXg1o8vcGmoR32`), with `metadata.deal_id` when given.
fn stripe_invoice(event_id: &str, id: &str, status: &str, deal: Option<&str>, at: i64) -> Value {
    let mut invoice =
        testkit::vendor_json("specs/stripe/fixtures3.json")["resources"]["invoice"].clone();
    invoice["id"] = json!(id);
    invoice["status"] = json!(status);
    invoice["number"] = json!(format!("INV-{id}"));
    if status == "paid" {
        invoice["amount_paid"] = invoice["total"].clone();
    }
    if let Some(deal) = deal {
        invoice["metadata"] = json!({ "deal_id": deal });
    }
    let kind = if status == "paid" {
        "invoice.paid"
    } else {
        "invoice.finalized"
    };
    json!({"id": event_id, "object": "event", "type": kind, "created": at, "data": {"object": invoice}})
}

/// The flow's dead letters.
async fn dead_letters(pipeline: &Pipeline, flow: &str) -> Vec<DeadLetter> {
    let letters = pipeline.flow_dead_letters(flow).await;
    letters.into_iter().map(|(_, letter)| letter).collect()
}

#[tokio::test]
async fn a_paid_invoice_wins_its_hubspot_deal_and_starts_post_sale_nurture() {
    let (crm, marketing) = (Connector::Hubspot, Connector::Klaviyo);
    let apis = VendorApis::start().await;
    let when = ", when: { status: paid }";
    let pipeline = start(
        &[
            destination(&apis, crm, "crm", ", source_system: demo"),
            destination(&apis, marketing, "marketing", ""),
        ],
        &[
            flow("paid-invoices-win-deals", "invoice", "crm", when),
            flow(
                "paid-invoices-nurture",
                "invoice",
                "marketing",
                &format!("{when}, list_id: {NURTURE}"),
            ),
        ],
    )
    .await;
    // HubSpot has the deal, mid-pipeline; the CRM (the `demo` source) reported it too.
    apis.seed(
        crm,
        "deals",
        HUBSPOT_DEAL,
        json!({"id": HUBSPOT_DEAL, "properties": {"dealname": "Northwind tents", "dealstage": "contractsent"}}),
    );
    send(
        &pipeline,
        "deal-contract",
        &event(
            "deal",
            1,
            json!({"id": HUBSPOT_DEAL, "name": "Northwind tents", "stage": "contract", "amount": money(1_000)}),
        ),
    )
    .await;
    // The paying customer, as Stripe reported it.
    let mut customer =
        testkit::vendor_json("samples/stripe/customer.created.derived-from-fixtures.json");
    customer["data"]["object"]["email"] = json!("Grace@Example.com");
    customer["data"]["object"]["name"] = json!("Grace Hopper");
    send_stripe(&pipeline, &customer).await;

    // An open invoice is not the flows' business.
    send_stripe(
        &pipeline,
        &stripe_invoice(
            "evt_inv_open",
            "in_1",
            "open",
            Some(HUBSPOT_DEAL),
            1_764_000_000,
        ),
    )
    .await;
    assert!(
        apis.requests(crm).is_empty(),
        "an open invoice updates no deal"
    );
    assert!(
        apis.requests(marketing).is_empty(),
        "an open invoice nurtures no one"
    );

    // Paid: Stripe sends the event, then retries it (same id) ...
    let paid = stripe_invoice(
        "evt_inv_paid",
        "in_1",
        "paid",
        Some(HUBSPOT_DEAL),
        1_764_000_060,
    );
    send_stripe(&pipeline, &paid).await;
    send_stripe(&pipeline, &paid).await;
    // ... and reports the same payment again under another event: no change, nothing to write.
    let mut again = paid.clone();
    again["id"] = json!("evt_inv_payment_succeeded");
    again["type"] = json!("invoice.payment_succeeded");
    send_stripe(&pipeline, &again).await;

    let seen = apis.requests(crm);
    assert_eq!(
        lines(&seen),
        [format!("PATCH /crm/v3/objects/deals/{HUBSPOT_DEAL}")],
        "exactly one update of the invoice's deal"
    );
    assert_eq!(
        seen[0].body,
        json!({"properties": {"dealstage": "closedwon"}})
    );
    assert_eq!(
        apis.records(crm, "deals")[HUBSPOT_DEAL]["properties"]["dealstage"],
        "closedwon"
    );
    let seen = apis.requests(marketing);
    assert_eq!(
        lines(&seen),
        [
            "POST /api/profile-import".to_owned(),
            format!("POST /api/lists/{NURTURE}/relationships/profiles")
        ],
        "the paying customer's profile, added once to the nurture list"
    );
    assert_eq!(
        seen[0].body,
        json!({"data": {"type": "profile", "attributes": {"email": "grace@example.com"}}}),
        "the email is the key; nothing else of the contact is sent"
    );
    let profile = apis.records(marketing, "profiles")["grace@example.com"]["id"].clone();
    assert_eq!(
        seen[1].body,
        json!({"data": [{"type": "profile", "id": profile}]})
    );
    assert_eq!(apis.records(marketing, "list_members").len(), 1);
    assert!(
        apis.records(marketing, "subscriptions").is_empty(),
        "a purchase is no marketing consent: nobody is subscribed"
    );

    // A paid invoice that names no deal: the CRM flow dead-letters it with its reason; the
    // customer is still nurtured.
    send_stripe(
        &pipeline,
        &stripe_invoice("evt_inv2_paid", "in_2", "paid", None, 1_764_000_120),
    )
    .await;
    assert_eq!(apis.requests(crm).len(), 1, "no deal, no update");
    let letters = dead_letters(&pipeline, "paid-invoices-win-deals").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.contains("no deal to update"),
        "{}",
        letters[0].reason
    );
    assert_eq!(apis.requests(marketing).len(), 4);
    assert_eq!(
        apis.records(marketing, "list_members").len(),
        1,
        "one member still"
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// Golden changes of one object on the GOLDEN stream, oldest first.
async fn golden_changes(pipeline: &Pipeline, object: &str) -> Vec<GoldenChange> {
    pipeline
        .stream_messages(StreamKind::Golden)
        .await
        .iter()
        .filter_map(|m| GoldenChange::decode(m.payload.as_ref()).ok())
        .filter(|c| c.object_type == object)
        .collect()
}

/// Dedupe attaches an invoice's deal and paying customer to its golden change: by `deal_id`, and
/// — for an invoice Switchyard itself created in the accounting system from a won deal, which
/// names no deal — by the crosswalk link deliver announced for that document.
#[tokio::test]
async fn an_invoice_change_carries_its_deal_and_its_customers_email() {
    let pipeline = start(&[], &[]).await;
    send(
        &pipeline,
        "c5",
        &contact("crm-5", "Lin@Example.com", 1, json!({"first_name": "Lin"})),
    )
    .await;
    send(
        &pipeline,
        "d5",
        &event(
            "deal",
            2,
            json!({"id": "deal-5", "name": "Stoves", "stage": "won", "amount": money(900)}),
        ),
    )
    .await;
    let deal = golden_changes(&pipeline, "deal").await[0].golden_id.clone();
    let contact_id = golden_changes(&pipeline, "contact").await[0]
        .golden_id
        .clone();
    let invoice = |id: &str, deal: Option<&str>, second: u32| {
        let mut data = json!({"id": id, "invoice_number": id, "status": "paid",
            "total": money(900), "customer_id": "crm-5"});
        if let Some(deal) = deal {
            data["deal_id"] = json!(deal);
        }
        event("invoice", second, data)
    };
    send(&pipeline, "i5", &invoice("inv-5", Some("deal-5"), 3)).await;
    // The accounting destination (its `source_system` is this source) created invoice inv-6 from
    // the won deal and announced the link, as deliver does.
    let link = CrosswalkLink {
        golden_id: deal.clone(),
        object: "deal".to_owned(),
        system: "demo".to_owned(),
        external_id: "inv-6".to_owned(),
    };
    let client = switchyard_chassis::async_nats::connect(&pipeline.nats_url)
        .await
        .expect("nats");
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    js.publish(
        format!("{}.canonical.crosswalk.books", pipeline.prefix),
        link.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    pipeline.wait_drained(Duration::from_secs(90)).await;
    send(&pipeline, "i6", &invoice("inv-6", None, 4)).await;
    // An invoice naming a deal nobody reported, and a customer nobody reported: nothing attached.
    let mut stray = invoice("inv-7", Some("deal-404"), 5);
    stray["data"]["customer_id"] = json!("crm-404");
    send(&pipeline, "i7", &stray).await;

    let changes = golden_changes(&pipeline, "invoice").await;
    assert_eq!(changes.len(), 3);
    for change in &changes[..2] {
        let related: Vec<_> = change
            .related
            .iter()
            .map(|r| {
                (
                    r.field.as_str(),
                    r.object_type.as_str(),
                    r.golden_id.as_str(),
                    r.email.as_str(),
                )
            })
            .collect();
        assert_eq!(
            related,
            [
                ("deal_id", "deal", deal.as_str(), ""),
                (
                    "customer_id",
                    "contact",
                    contact_id.as_str(),
                    "lin@example.com"
                )
            ],
            "{}",
            change.change_id
        );
        assert!(
            change.related[0]
                .external_refs
                .iter()
                .any(|r| r.system == "demo" && r.object == "deal" && r.id == "deal-5"),
            "the deal's ids travel with it"
        );
    }
    assert!(changes[2].related.is_empty(), "{:?}", changes[2].related);
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
/// deliver sends the webhook again with the same `webhook-id`, and finds the customer the
/// unanswered QuickBooks write made (its look-up before a create) and updates it — or repeats the
/// write's `requestid` — so each destination still holds exactly one record.
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
    apis.wait_for("QuickBooks got the write", |a| {
        a.requests(c).iter().any(|r| r.method == "POST")
    })
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
    let customers = apis.records(c, "Customer");
    assert_eq!(customers.len(), 1, "one customer");
    let made = customers.keys().next().expect("the customer");
    let seen = apis.requests(c);
    let writes: Vec<&Request> = seen.iter().filter(|r| r.method == "POST").collect();
    assert!(writes.len() >= 2, "the QuickBooks write was sent again");
    assert!(
        writes[1..]
            .iter()
            .all(|r| write_key(c, r) == write_key(c, writes[0])
                || r.body["Id"].as_str() == Some(made.as_str())),
        "every later attempt repeats the first requestid or updates the customer it made: {:?}",
        writes.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
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
