//! Stripe: a contact Stripe does not know is created once (form-encoded, with an
//! `Idempotency-Key`) and updated by its new id after; a contact that came from this Stripe
//! account (its customer id in the crosswalk) is updated in place, never created again.

use serde_json::json;
use switchyard_chassis::testkit;
use switchyard_integration_tests::STRIPE_SECRET;
use switchyard_integration_tests::vendor_apis::{Connector, STRIPE_KEY, VendorApis};

use super::{assert_no_problems, contact, destination, flow, lines, start};

/// The customer id of Stripe's published customer fixture.
const FIXTURE_CUSTOMER: &str = "cus_QXg1o8vcGmoR32";

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn stripe_creates_customers_once_and_updates_the_ones_it_knows() {
    let c = Connector::Stripe;
    let apis = VendorApis::start().await;
    let fixture =
        testkit::vendor_json("specs/stripe/fixtures3.json")["resources"]["customer"].clone();
    apis.seed(c, "customers", FIXTURE_CUSTOMER, fixture);
    // The pipeline's `stripe` source is this Stripe account.
    let pipeline = start(
        &[destination(&apis, c, "payments", ", source_system: stripe")],
        &[flow("stripe-customers", "contact", "payments", "")],
    )
    .await;
    let ada = |last: &str, second| {
        contact(
            "crm-1",
            "ada@example.com",
            second,
            json!({"first_name": "Ada", "last_name": last, "phone": "+44 20 7946 0958", "country": "gb"}),
        )
    };
    super::send(&pipeline, "a1", &ada("Lovelace", 1)).await;
    super::send(&pipeline, "a2", &ada("King", 2)).await;
    // A customer.created webhook from this Stripe account, for the fixture customer.
    let mut webhook =
        testkit::vendor_json("samples/stripe/customer.created.derived-from-fixtures.json");
    webhook["data"]["object"]["email"] = json!("grace@example.com");
    webhook["data"]["object"]["name"] = json!("Grace Hopper");
    let body = serde_json::to_vec(&webhook).expect("json");
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
    pipeline.wait_drained(super::WAIT).await;

    let seen = apis.requests(c);
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {STRIPE_KEY}").as_str())
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(request.status, 200, "{}", request.line());
    }
    let created = apis
        .records(c, "customers")
        .into_keys()
        .find(|id| id != FIXTURE_CUSTOMER)
        .expect("Ada's customer");
    assert_eq!(
        lines(&seen),
        [
            "POST /v1/customers".to_owned(),
            format!("POST /v1/customers/{created}"),
            format!("POST /v1/customers/{FIXTURE_CUSTOMER}"),
        ],
        "created once, then updated; the Stripe customer updated in place"
    );
    let golden = seen[0].body["metadata[switchyard_id]"]
        .as_str()
        .expect("golden id");
    assert_eq!(
        seen[0].body,
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+442079460958",
            "address[country]": "GB", "metadata[switchyard_id]": golden})
    );
    assert_eq!(seen[1].body["name"], "Ada King");
    assert_eq!(seen[2].body["email"], "grace@example.com");
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| r.header("idempotency-key").unwrap_or_default())
        .collect();
    assert!(
        keys.iter().all(|k| !k.is_empty()) && keys[0] != keys[1] && keys[1] != keys[2],
        "{keys:?}"
    );
    let customers = apis.records(c, "customers");
    assert_eq!(customers.len(), 2, "no second customer for anyone");
    assert_eq!(customers[&created]["name"], "Ada King");
    assert_no_problems(&apis);
    pipeline.finish().await;
}
