//! Stripe: a contact Stripe does not know is created once (form-encoded, with an
//! `Idempotency-Key`) and updated by its new id after; a contact that came from this Stripe
//! account (its customer id in the crosswalk) is updated in place, never created again; a
//! customer made in Stripe by hand with the contact's email is adopted, and two of them are left
//! for a person.

use serde_json::{Value, json};
use switchyard_chassis::testkit;
use switchyard_integration_tests::vendor_apis::{Connector, STRIPE_KEY, VendorApis};
use switchyard_integration_tests::{ADMIN_OPERATOR_TOKEN, Pipeline, STRIPE_SECRET};

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

/// The customer of Stripe's published fixtures.
fn customer_fixture() -> Value {
    testkit::vendor_json("specs/stripe/fixtures3.json")["resources"]["customer"].clone()
}

/// A pipeline with one flow of contacts to a Stripe destination `payments` (with `extra` keys).
async fn stripe_pipeline(apis: &VendorApis, extra: &str) -> Pipeline {
    start(
        &[destination(apis, Connector::Stripe, "payments", extra)],
        &[flow("stripe-customers", "contact", "payments", "")],
    )
    .await
}

/// Ada's contact from the `demo` source (id `crm-1`), with `extra` fields.
fn ada(second: u32, extra: Value) -> Value {
    let mut fields = json!({"first_name": "Ada"});
    if let (Some(f), Some(e)) = (fields.as_object_mut(), extra.as_object()) {
        f.extend(e.clone());
    }
    contact("crm-1", "ada@example.com", second, fields)
}

#[tokio::test]
async fn stripe_creates_customers_once_and_updates_the_ones_it_knows() {
    let c = Connector::Stripe;
    let apis = VendorApis::start().await;
    let fixture = customer_fixture();
    apis.seed(c, "customers", FIXTURE_CUSTOMER, fixture);
    // The pipeline's `stripe` source is this Stripe account.
    let pipeline = stripe_pipeline(&apis, ", source_system: stripe").await;
    let ada = |last: &str, second| {
        ada(
            second,
            json!({"last_name": last, "phone": "+44 20 7946 0958", "country": "gb"}),
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

    let all = apis.requests(c);
    // One look-up, for Ada, before her customer is created: Grace's id came with her webhook.
    let lookups: Vec<_> = all.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(lookups.len(), 1, "{:?}", lines(&all));
    assert_eq!(lookups[0].path, "/v1/customers");
    assert_eq!(
        lookups[0].query.get("email").map(String::as_str),
        Some("ada@example.com")
    );
    let seen: Vec<_> = all.into_iter().filter(|r| r.method == "POST").collect();
    for request in &seen {
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

/// The customer a person made in Stripe before Switchyard, with the contact's email: found,
/// linked in dedupe's crosswalk and updated; nothing created, then or on the next change.
#[tokio::test]
async fn stripe_adopts_the_customer_it_already_holds_with_the_email() {
    let c = Connector::Stripe;
    let apis = VendorApis::start().await;
    let mut fixture = customer_fixture();
    fixture["email"] = json!("ada@example.com");
    apis.seed(c, "customers", FIXTURE_CUSTOMER, fixture.clone());
    // Someone else, for the look-up to pass over.
    fixture["id"] = json!("cus_Other");
    fixture["email"] = json!("grace@example.com");
    apis.seed(c, "customers", "cus_Other", fixture);
    let pipeline = stripe_pipeline(&apis, "").await;
    let ada = |last: &str, second| ada(second, json!({"last_name": last}));
    super::send(&pipeline, "a1", &ada("Lovelace", 1)).await;
    super::send(&pipeline, "a2", &ada("King", 2)).await;

    let seen = apis.requests(c);
    assert_eq!(
        lines(&seen),
        [
            "GET /v1/customers".to_owned(),
            format!("POST /v1/customers/{FIXTURE_CUSTOMER}"),
            format!("POST /v1/customers/{FIXTURE_CUSTOMER}"),
        ],
        "looked up once, adopted, updated twice, never created"
    );
    let customers = apis.records(c, "customers");
    assert_eq!(customers.len(), 2);
    assert_eq!(customers[FIXTURE_CUSTOMER]["name"], "Ada King");
    assert!(
        super::linked(&pipeline, "payments", FIXTURE_CUSTOMER, "crm-1").await,
        "the adopted customer leads to Ada's golden record"
    );
    assert!(
        pipeline
            .flow_dead_letters("stripe-customers")
            .await
            .is_empty()
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// Two Stripe customers with the contact's email: neither is adopted and none is created; the
/// dead letter names both, and so does the conflict raised for a person (`admin conflicts`).
#[tokio::test]
async fn stripe_writes_nothing_when_two_customers_hold_the_email() {
    let c = Connector::Stripe;
    let apis = VendorApis::start().await;
    let fixture = customer_fixture();
    for id in ["cus_First", "cus_Second"] {
        let mut customer = fixture.clone();
        customer["id"] = json!(id);
        customer["email"] = json!("ada@example.com");
        apis.seed(c, "customers", id, customer);
    }
    let pipeline = stripe_pipeline(&apis, "").await;
    super::send(&pipeline, "a1", &ada(1, json!({"last_name": "Lovelace"}))).await;

    let seen = apis.requests(c);
    assert_eq!(lines(&seen), ["GET /v1/customers"], "nothing written");
    assert_eq!(apis.records(c, "customers").len(), 2);
    let letters = pipeline.flow_dead_letters("stripe-customers").await;
    assert_eq!(letters.len(), 1);
    let reason = &letters[0].1.reason;
    assert!(
        reason.contains("cus_First") && reason.contains("cus_Second"),
        "{reason}"
    );
    assert!(
        !reason.contains("ada@example.com"),
        "no email in a reason: {reason}"
    );
    let conflicts = super::destination_conflicts(&pipeline).await;
    assert_eq!(
        conflicts.len(),
        1,
        "one conflict for a person: {conflicts:?}"
    );
    assert!(
        conflicts[0].1.contains("cus_First") && conflicts[0].1.contains("cus_Second"),
        "{conflicts:?}"
    );

    // The dashboard's review: no pair to merge or keep apart, only a conflict to close once the
    // customers are merged in Stripe.
    let base = pipeline.dashboard_url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let cookie = crate::monitoring::session(&http, &base, ADMIN_OPERATOR_TOKEN).await;
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).header("cookie", &cookie);
        async move {
            let response = request.send().await.expect("page");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }
    };
    let (status, review) = get("/conflicts?kind=destination_duplicates".to_owned()).await;
    assert_eq!(status, 200, "{review}");
    assert!(
        review.contains("a destination holds several records"),
        "{review}"
    );
    let id: i64 = pipeline
        .db()
        .await
        .query_one(
            "SELECT id FROM conflicts WHERE kind = 'destination_duplicates'",
            &[],
        )
        .await
        .expect("the conflict")
        .get(0);
    assert!(
        review.contains(&format!("/conflicts/{id}/keep-apart")),
        "{review}"
    );
    assert!(
        !review.contains(&format!("/conflicts/{id}/merge")),
        "{review}"
    );
    let (status, refused) = get(format!("/conflicts/{id}/merge")).await;
    assert_eq!(status, 409, "nothing to merge here: {refused}");
    let (status, confirm) = get(format!("/conflicts/{id}/keep-apart")).await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains("cus_First") && confirm.contains("Close"),
        "{confirm}"
    );
    let closed = http
        .post(format!("{base}/conflicts/{id}/keep-apart"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("confirm=yes")
        .send()
        .await
        .expect("close");
    assert_eq!(closed.status().as_u16(), 303);
    assert!(
        super::destination_conflicts(&pipeline).await.is_empty(),
        "closed"
    );

    // Closing it says nothing about the next: Ada's next change finds the two customers still
    // there and raises a conflict again, open.
    super::send(&pipeline, "a2", &ada(2, json!({"last_name": "King"}))).await;
    assert_eq!(super::destination_conflicts(&pipeline).await.len(), 1);
    pipeline.finish().await;
}
