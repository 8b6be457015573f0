//! Every vendor source kind, with its own signature scheme and reply: genuine webhooks stored
//! once, retries acknowledged, tampered or foreign ones refused.

use switchyard_chassis::testkit;

use crate::harness::{raw_stream, start_with};

fn b64_hmac(key: &str, parts: &[&[u8]]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn sample(path: &str) -> Vec<u8> {
    let file = testkit::vendor_file(&format!("samples/{path}"))
        .display()
        .to_string();
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}")))
            .expect("json");
    serde_json::to_vec(&value).expect("json")
}

const VENDOR_SOURCES: &str = r#"
  - { name: hub, kind: hubspot, secret_env: [HUB], public_url: "https://hooks.example.com/v1/webhooks/hub" }
  - { name: stripe, kind: stripe, secret_env: [STRIPE] }
  - { name: shop, kind: shopify, secret_env: [SHOP] }
  - { name: qbo, kind: quickbooks, secret_env: [QBO] }
  - { name: xero, kind: xero, secret_env: [XERO] }
  - { name: mc, kind: mailchimp, secret_env: [MC] }
  - { name: kl, kind: klaviyo, secret_env: [KL] }
  - { name: sf, kind: salesforce, organization_id: "00D000000000062EAA" }
"#;

struct Case {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// (subject tail after `<prefix>.raw.`, Nats-Msg-Id) expected on the RAW stream.
    expect: Vec<(String, String)>,
    /// What the vendor must get back.
    reply: &'static str,
}

fn vendor_cases() -> Vec<Case> {
    let now = switchyard_chassis::unix_now();
    let now_ms = (now * 1000).to_string();
    let hub = sample("hubspot/webhook-batch.contact.propertyChange+creation.docs-example.json");
    let stripe = sample("stripe/customer.created.derived-from-fixtures.json");
    let qbo = sample("quickbooks/eventNotifications.customer.create.json");
    let qbo_ce = sample("quickbooks/cloudevents.customer.merged.docs-example.json");
    let xero = sample("xero/contact.update.json");
    let kl = br#"{"data":[{"external_id":"kl-1","topic":"event:klaviyo.subscribed_to_list","payload":{}},{"external_id":"kl-2","topic":"event:klaviyo.subscribed_to_list","payload":{}}],"meta":{"klaviyo_account_id":"A"}}"#.to_vec();
    let shop = br#"{"id":706405506930370084,"email":"bob@example.com"}"#.to_vec();
    let mc_fields: serde_json::Value =
        serde_json::from_slice(&sample("mailchimp/profile.form-fields.json")).expect("json");
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in mc_fields.as_object().expect("map") {
        form.append_pair(k, v.as_str().unwrap_or_default());
    }
    let mc = form.finish().into_bytes();
    let sf = SALESFORCE.as_bytes().to_vec();
    let json = || ("content-type", "application/json".to_owned());
    vec![
        Case {
            path: "hub",
            headers: vec![json(), ("x-hubspot-request-timestamp", now_ms.clone()),
                ("x-hubspot-signature-v3", b64_hmac("hub-secret", &[b"POST", b"https://hooks.example.com/v1/webhooks/hub", &hub, now_ms.as_bytes()]))],
            expect: vec![("hub.contact.propertychange".into(), "hub:3816279340".into()), ("hub.contact.creation".into(), "hub:3816279480".into())],
            body: hub,
            reply: "json",
        },
        Case {
            path: "stripe",
            headers: vec![json(), ("stripe-signature", format!("t={now},v1={}", hex_hmac("whsec_stripe", &[now.to_string().as_bytes(), b".", &stripe])))],
            expect: vec![("stripe.customer.created".into(), "stripe:evt_1Pgc76B7WZ01zgkWwyRHS12y".into())],
            body: stripe,
            reply: "json",
        },
        Case {
            path: "shop",
            headers: vec![json(), ("x-shopify-hmac-sha256", b64_hmac("shop-secret", &[&shop])), ("x-shopify-webhook-id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()), ("x-shopify-topic", "customers/create".into())],
            expect: vec![("shop.customers.create".into(), "shop:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into())],
            body: shop,
            reply: "json",
        },
        Case {
            path: "qbo",
            headers: vec![json(), ("intuit-signature", b64_hmac("qbo-token", &[&qbo]))],
            expect: vec![("qbo.customer.create".into(), "qbo:1185883450:Customer:1:Create:2015-10-05T14:42:19-0700".into())],
            body: qbo,
            reply: "json",
        },
        Case {
            path: "qbo",
            headers: vec![("content-type", "application/cloudevents-batch+json".into()), ("intuit-signature", b64_hmac("qbo-token", &[&qbo_ce]))],
            expect: vec![],
            body: qbo_ce,
            reply: "json",
        },
        Case {
            path: "xero",
            headers: vec![json(), ("x-xero-signature", b64_hmac("xero-key", &[&xero]))],
            expect: vec![("xero.contact.update".into(), "xero:c2cc9b6e-9458-4c7d-93cc-f02b81b0594f:CONTACT:717f2bfc-c6d4-41fd-b238-3f2f0c0cf777:UPDATE:2024-06-21T01:15:39.902".into())],
            body: xero,
            reply: "empty",
        },
        Case {
            path: "mc/mc-token",
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            expect: vec![],
            body: mc,
            reply: "json",
        },
        Case {
            path: "kl",
            headers: vec![json(), ("klaviyo-timestamp", now.to_string()), ("klaviyo-signature", hex_hmac("kl-secret", &[&kl, now.to_string().as_bytes()]))],
            expect: vec![("kl.event.klaviyo.subscribed_to_list".into(), "kl:kl-1".into()), ("kl.event.klaviyo.subscribed_to_list".into(), "kl:kl-2".into())],
            body: kl,
            reply: "json",
        },
        Case {
            path: "sf",
            headers: vec![("content-type", "text/xml; charset=utf-8".into())],
            expect: vec![("sf.contact.outbound_message".into(), "sf:04l000000000001AAA".into()), ("sf.lead.outbound_message".into(), "sf:04l000000000002AAA".into())],
            body: sf,
            reply: "soap",
        },
    ]
}

const SALESFORCE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000062EAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <Notification><Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>003000000000001AAA</sf:Id><sf:Email>jane@example.com</sf:Email></sObject>
   </Notification>
   <Notification><Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>00Q000000000001AAA</sf:Id></sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

#[tokio::test]
async fn every_vendor_kind_stores_genuine_webhooks_and_refuses_tampered_ones() {
    let nats = testkit::nats_url();
    let secrets = [
        ("HUB", "hub-secret"),
        ("STRIPE", "whsec_stripe"),
        ("SHOP", "shop-secret"),
        ("QBO", "qbo-token"),
        ("XERO", "xero-key"),
        ("MC", "mc-token"),
        ("KL", "kl-secret"),
    ];
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\" }}"),
        VENDOR_SOURCES,
        &secrets,
    )
    .await;
    let mut expected = Vec::new();
    for case in vendor_cases() {
        let (status, text) = ingest
            .request(reqwest::Method::POST, case.path, &case.headers, &case.body)
            .await;
        assert_eq!(status, 200, "{}: {text}", case.path);
        match case.reply {
            "empty" => assert!(
                text.is_empty(),
                "{}: Xero wants an empty body, got {text}",
                case.path
            ),
            "soap" => assert!(text.contains("<Ack>true</Ack>"), "{}: {text}", case.path),
            _ => assert!(
                text.contains("\"status\":\"accepted\""),
                "{}: {text}",
                case.path
            ),
        }
        for (tail, id) in &case.expect {
            expected.push((format!("{}.raw.{tail}", ingest.prefix), id.clone()));
        }
        // The vendor retries: acknowledged again, stored once.
        let (status, _) = ingest
            .request(reqwest::Method::POST, case.path, &case.headers, &case.body)
            .await;
        assert_eq!(status, 200, "{}: retry", case.path);
        // One flipped byte: refused, with Xero's empty body. Mailchimp and Salesforce sign
        // nothing; their URL token and organisation id are checked below instead.
        if case.path != "sf" && !case.path.starts_with("mc/") {
            let mut tampered = case.body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 0x01;
            let (status, text) = ingest
                .request(reqwest::Method::POST, case.path, &case.headers, &tampered)
                .await;
            assert_eq!(status, 401, "{}: tampered: {text}", case.path);
            if case.path == "xero" {
                assert!(text.is_empty(), "Xero gets an empty body even on 401");
            }
        }
    }
    let foreign = SALESFORCE.replace("00D000000000062EAA", "00D000000000099EAA");
    let (status, _) = ingest
        .request(
            reqwest::Method::POST,
            "sf",
            &[("content-type", "text/xml".into())],
            foreign.as_bytes(),
        )
        .await;
    assert_eq!(status, 401, "another organisation's messages are refused");
    let (status, _) = ingest
        .request(reqwest::Method::GET, "mc/mc-token", &[], b"")
        .await;
    assert_eq!(status, 200, "Mailchimp's URL validation");
    let (status, _) = ingest
        .request(reqwest::Method::GET, "mc/wrong", &[], b"")
        .await;
    assert_eq!(status, 401);
    let form = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, _) = ingest
        .request(reqwest::Method::POST, "mc/wrong", &form, b"type=subscribe")
        .await;
    assert_eq!(
        status, 401,
        "a Mailchimp post without the URL token is refused"
    );
    // Xero's intent-to-receive handshake.
    let handshake = br#"{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"X"}"#;
    let signed = vec![
        ("content-type", "application/json".to_owned()),
        ("x-xero-signature", b64_hmac("xero-key", &[handshake])),
    ];
    assert_eq!(
        ingest
            .request(reqwest::Method::POST, "xero", &signed, handshake)
            .await,
        (200, String::new())
    );
    let forged = vec![
        ("content-type", "application/json".to_owned()),
        ("x-xero-signature", b64_hmac("nope", &[handshake])),
    ];
    assert_eq!(
        ingest
            .request(reqwest::Method::POST, "xero", &forged, handshake)
            .await,
        (401, String::new())
    );

    let stored = raw_stream(&nats, &ingest.prefix).await;
    for pair in &expected {
        assert_eq!(
            stored.iter().filter(|s| *s == pair).count(),
            1,
            "{pair:?} stored exactly once in {stored:#?}"
        );
    }
    // Every genuine event is on the stream, no retry twice: the CloudEvents and Mailchimp cases
    // add one each beyond the listed ones.
    assert_eq!(stored.len(), expected.len() + 2, "{stored:#?}");
    ingest.stop(&nats).await;
}
