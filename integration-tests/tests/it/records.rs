//! Identity resolution beyond contacts, through the whole pipeline: companies keyed on their
//! registrable domain and tax id, products on their SKU, invoices on their source ids; keys that
//! point at two companies recorded as a conflict instead of merged; the contracts' systems of
//! record owning their fields; older updates ignored; replayed events changing nothing.

use std::time::Duration;

use prost::Message as _;
use serde_json::{Value, json};
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::{MAILCHIMP_TOKEN, Options, Pipeline, SALESFORCE_ORG, Service};
use switchyard_proto::v1::{GoldenChange, canonical_object::Object};

const WAIT: Duration = Duration::from_secs(30);

/// Sends one canonical JSON event and waits until the pipeline has settled it: the events of
/// these tests happen at different times, and dedupe resolves what is in hand concurrently.
async fn send_ok(pipeline: &Pipeline, id: &str, kind: &str, timestamp: &str, data: Value) {
    let body = json!({"type": kind, "timestamp": timestamp, "data": data});
    let (status, answer) = pipeline.send(id, &body).await;
    assert_eq!(status, 200, "{id}: {answer}");
    pipeline.wait_drained(WAIT).await;
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Golden changes on the GOLDEN stream for one object, oldest first.
async fn changes(pipeline: &Pipeline, object: &str) -> Vec<GoldenChange> {
    pipeline
        .stream_messages(StreamKind::Golden)
        .await
        .iter()
        .filter_map(|m| GoldenChange::decode(m.payload.as_ref()).ok())
        .filter(|c| c.object_type == object)
        .collect()
}

#[tokio::test]
async fn companies_resolve_on_registrable_domain_and_tax_id_and_conflicts_stay_apart() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t = |minute: u32| format!("2026-11-27T10:{minute:02}:00Z");
    // One company as four systems wrote it: a website URL, a subdomain, an address, a bare VAT
    // number (prefixed by its country).
    send_ok(&pipeline, "c1", "company.created", &t(0),
        json!({"id": "crm-1", "name": "Example Ltd", "website": "https://www.Example.co.uk/about", "tax_id": "DE 123 456 789", "country": "DE"})).await;
    send_ok(&pipeline, "c2", "company.updated", &t(1),
        json!({"id": "shop-7", "name": "Example Ltd", "domain": "shop.example.co.uk", "industry": "Retail"})).await;
    send_ok(
        &pipeline,
        "c3",
        "company.updated",
        &t(2),
        json!({"id": "books-3", "name": "Example Limited", "email": "accounts@example.co.uk"}),
    )
    .await;
    send_ok(
        &pipeline,
        "c4",
        "company.updated",
        &t(3),
        json!({"id": "erp-9", "name": "Example Limited", "tax_id": "123456789", "country": "de"}),
    )
    .await;
    // A different company on the same public suffix, and one whose keys point at two companies.
    send_ok(
        &pipeline,
        "c5",
        "company.created",
        &t(4),
        json!({"id": "crm-2", "name": "Other plc", "domain": "other.co.uk", "tax_id": "GB999"}),
    )
    .await;
    send_ok(
        &pipeline,
        "c6",
        "company.updated",
        &t(5),
        json!({"id": "crm-3", "name": "Confused", "domain": "example.co.uk", "tax_id": "GB999"}),
    )
    .await;
    // An older update never overwrites newer values.
    send_ok(
        &pipeline,
        "c7",
        "company.updated",
        "2026-11-26T00:00:00Z",
        json!({"id": "shop-7", "name": "Example (old name)", "domain": "example.co.uk"}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;

    let db = pipeline.db().await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM golden_records WHERE object = 'company'"
        )
        .await,
        2
    );
    let example: String = db
        .query_one(
            "SELECT golden_id::text FROM crosswalk WHERE object = 'company' AND external_id = 'crm-1'",
            &[],
        )
        .await
        .expect("crm-1")
        .get(0);
    let linked: Vec<String> = db
        .query("SELECT external_id FROM crosswalk WHERE object = 'company' AND golden_id::text = $1 ORDER BY 1", &[&example])
        .await
        .expect("crosswalk")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(linked, ["books-3", "crm-1", "erp-9", "shop-7"]);
    let conflicts: Vec<(String, String)> = db
        .query("SELECT object, detail FROM identity_conflicts", &[])
        .await
        .expect("conflicts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        conflicts,
        [(
            "company".to_owned(),
            "domain matched golden_a, tax_id matched golden_b; not merged".to_owned()
        )]
    );
    let outcome: String = db
        .query_one(
            "SELECT outcome FROM processed_events WHERE event_id = 'demo:c7'",
            &[],
        )
        .await
        .expect("c7")
        .get(0);
    assert_eq!(outcome, "stale");

    let latest = changes(&pipeline, "company")
        .await
        .into_iter()
        .filter(|c| c.golden_id == example)
        .max_by_key(|c| c.version)
        .expect("changes of the example company");
    let Some(Object::Company(company)) = latest.record.and_then(|r| r.object) else {
        panic!("a company record");
    };
    assert_eq!(
        (
            company.name.as_str(),
            company.domain.as_str(),
            company.industry.as_str()
        ),
        ("Example Limited", "example.co.uk", "Retail")
    );
    // erp-9 brought the same tax id in another spelling and nothing else: linked (above), but no
    // change, so the latest change still names the three systems before it.
    assert_eq!(latest.external_refs.len(), 3);
    assert_eq!(
        company.tax_id, "DE123456789",
        "delivered as the key reads it"
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn products_share_a_sku_invoices_follow_their_source_id_and_replays_change_nothing() {
    let pipeline = Pipeline::start(Options::default()).await;
    let price = |n: i64| json!({"minor_units": n, "currency": "EUR"});
    send_ok(&pipeline, "p1", "product.created", "2026-11-27T10:00:00Z",
        json!({"id": "shop-1", "sku": " tshirt-m ", "name": "T-shirt M", "unit_price": price(1999)})).await;
    send_ok(&pipeline, "p2", "item.updated", "2026-11-27T10:01:00Z",
        json!({"id": "books-55", "sku": "TSHIRT-M", "name": "T-shirt M", "unit_price": price(1999), "tax_rate_bp": 2000})).await;
    send_ok(
        &pipeline,
        "i1",
        "invoice.created",
        "2026-11-27T10:02:00Z",
        json!({"id": "inv-1", "invoice_number": "INV-1", "status": "open", "total": price(1999)}),
    )
    .await;
    send_ok(&pipeline, "i2", "invoice.updated", "2026-11-27T10:03:00Z",
        json!({"id": "inv-1", "invoice_number": "INV-1", "status": "paid", "total": price(1999), "amount_paid": price(1999)})).await;
    // The same invoice number from another id is another invoice: numbers are not identities.
    send_ok(
        &pipeline,
        "i3",
        "invoice.created",
        "2026-11-27T10:04:00Z",
        json!({"id": "inv-2", "invoice_number": "INV-1", "status": "draft", "total": price(5)}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;

    let db = pipeline.db().await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM golden_records WHERE object = 'product'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM golden_records WHERE object = 'invoice'"
        )
        .await,
        2
    );
    let products = changes(&pipeline, "product").await;
    assert_eq!(products.len(), 2, "created, then the tax rate added");
    assert_eq!(products[1].changed_fields, ["tax_rate_bp"]);
    let Some(Object::Product(product)) = products[1].record.clone().and_then(|r| r.object) else {
        panic!("a product");
    };
    assert_eq!(product.sku, "TSHIRT-M");
    let invoices = changes(&pipeline, "invoice").await;
    let paid = invoices
        .iter()
        .find(|c| c.version == 2)
        .expect("the invoice's second version");
    assert_eq!(paid.changed_fields, ["status", "amount_paid"]);

    // Replaying every canonical message (as an operator replay does: the same events under new
    // message ids) produces nothing new: each is a duplicate of its source event.
    let golden_before = pipeline.stream_messages(StreamKind::Golden).await.len();
    let canonical = pipeline.stream_messages(StreamKind::Canonical).await;
    let client = switchyard_chassis::async_nats::connect(&pipeline.nats_url)
        .await
        .expect("nats");
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    for (i, message) in canonical.iter().enumerate() {
        let mut headers = switchyard_chassis::async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("replay:{i}").as_str());
        js.publish_with_headers(message.subject.clone(), headers, message.payload.clone())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    pipeline.wait_drained(WAIT).await;
    assert_eq!(
        pipeline.stream_messages(StreamKind::Golden).await.len(),
        golden_before,
        "a replay changes no golden record"
    );
    let duplicates = count(
        &db,
        "SELECT count(*) FROM processed_events WHERE outcome = 'duplicate'",
    )
    .await;
    assert_eq!(duplicates, 0, "duplicates are not recorded again");
    let line = r#"switchyard_dedupe_events_total{object="invoice",outcome="duplicate"}"#;
    assert_eq!(pipeline.metric(Service::Dedupe, line).await, Some(3.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn the_crm_owns_the_lifecycle_stage_even_against_a_newer_marketing_update() {
    let pipeline = Pipeline::start(Options::default()).await;
    // The CRM says customer.
    let soap = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{SALESFORCE_ORG}</OrganizationId><ActionId>04k000000000001AAA</ActionId><Notification><Id>04l000000000009AAA</Id><sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>003000000000009AAA</sf:Id><sf:Email>lin@example.org</sf:Email><sf:FirstName>Lin</sf:FirstName><sf:LastName>Chen</sf:LastName><sf:LastModifiedDate>2026-11-27T09:00:00.000Z</sf:LastModifiedDate></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"#
    );
    let headers = [("content-type", "text/xml; charset=utf-8".to_owned())];
    let (status, text) = pipeline
        .send_to("salesforce", &headers, soap.as_bytes())
        .await;
    assert_eq!(status, 200, "{text}");
    pipeline.wait_drained(WAIT).await;
    // An hour later the marketing tool, which says "subscriber" of everyone on its list, and
    // knows her by a nickname.
    let form = "type=subscribe&fired_at=2026-11-27+10%3A00%3A00&data%5Bid%5D=9f00aa11&data%5Bemail%5D=lin%40example.org&data%5Bmerges%5D%5BFNAME%5D=Lynn";
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

    let db = pipeline.db().await;
    let row = db
        .query_one("SELECT lifecycle_stage, first_name, marketing_consent FROM golden_contacts WHERE email = 'lin@example.org'", &[])
        .await
        .expect("one golden contact");
    let (stage, first, consent): (String, String, Option<bool>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(stage, "customer", "the CRM owns the lifecycle stage");
    assert_eq!(first, "Lynn", "no owner: the newest value wins");
    assert_eq!(consent, Some(true), "marketing owns consent");
    pipeline.finish().await;
}
