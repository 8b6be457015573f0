//! Loading, layering and validation, problem by problem.

use std::time::Duration;

use super::*;
use secrecy::ExposeSecret;

const YAML: &str = r#"
prefix: t1
sources:
  - name: demo
    kind: standard-webhooks
    secret_env: [DEMO_SECRET]
destinations:
  - name: sink
    kind: webhook
    url: http://127.0.0.1:9000/hook
    secret_env: SINK_SECRET
flows:
  - name: contacts
    object: contact
    destination: sink
"#;

fn env() -> Env {
    Env::from_pairs([
        ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("NATS_URL", "nats://127.0.0.1:4999"),
    ])
}

#[test]
fn environment_overrides_the_file_and_resolves_secrets() {
    let config = Config::from_yaml(YAML, &env()).expect("valid config");
    assert_eq!(config.nats.url, "nats://127.0.0.1:4999");
    assert_eq!(config.sources[0].secrets().len(), 1);
    assert_eq!(
        config.sources[0].secrets()[0].expose_secret(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );
    assert_eq!(config.flows[0].on, vec![Trigger::Created, Trigger::Updated]);
}

#[test]
fn max_age_and_circuit_breaker_have_defaults_and_are_checked() {
    let config = Config::from_yaml(YAML, &env()).expect("valid config");
    assert_eq!(config.flows[0].max_age, Duration::from_secs(24 * 3600));
    let breaker = config.destinations[0].circuit_breaker;
    assert_eq!((breaker.failures, breaker.cool_down.as_secs()), (5, 30));
    let yaml = YAML
        .replace(
            "    destination: sink",
            "    destination: sink\n    max_age: 90s",
        )
        .replace(
            "    secret_env: SINK_SECRET",
            "    secret_env: SINK_SECRET\n    circuit_breaker: { failures: 3, cool_down: 2s }",
        );
    let config = Config::from_yaml(&yaml, &env()).expect("valid config");
    assert_eq!(config.flows[0].max_age, Duration::from_secs(90));
    let breaker = config.destinations[0].circuit_breaker;
    assert_eq!((breaker.failures, breaker.cool_down.as_secs()), (3, 2));
    let yaml = YAML
        .replace(
            "    destination: sink",
            "    destination: sink\n    max_age: 0s",
        )
        .replace(
            "    secret_env: SINK_SECRET",
            "    secret_env: SINK_SECRET\n    circuit_breaker: { failures: 0 }",
        );
    let text = Config::from_yaml(&yaml, &env())
        .expect_err("invalid")
        .to_string();
    assert!(text.contains("flows[0].max_age"), "{text}");
    assert!(text.contains("destinations[0].circuit_breaker"), "{text}");
}

#[test]
fn every_problem_names_its_field() {
    let yaml = YAML
        .replace("prefix: t1", "prefix: T.1")
        .replace("destination: sink", "destination: nowhere");
    let err = Config::from_yaml(&yaml, &Env::default()).expect_err("invalid config");
    let text = err.to_string();
    assert!(text.contains("prefix: \"T.1\""), "{text}");
    assert!(
        text.contains("flows[0].destination: no destination is named \"nowhere\""),
        "{text}"
    );
    assert!(
        text.contains("sources[0].secret_env[0]: environment variable DEMO_SECRET is not set"),
        "{text}"
    );
    assert!(text.contains("destinations[0].secret_env"), "{text}");
}

#[test]
fn each_service_resolves_only_its_own_secrets() {
    // Only the source secret is set: ingest loads, deliver (which needs the sink's) does not.
    let env = Env::from_pairs([("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
    let ingest =
        Config::from_yaml_for(YAML, &env, Scope::Ingest).expect("ingest needs no sink secret");
    assert_eq!(ingest.sources[0].secrets().len(), 1);
    let transform =
        Config::from_yaml_for(YAML, &env, Scope::Transform).expect("transform needs none");
    assert!(
        transform.sources[0].secrets().is_empty(),
        "transform never holds webhook secrets"
    );
    let err =
        Config::from_yaml_for(YAML, &env, Scope::Deliver).expect_err("deliver needs the sink's");
    assert!(
        err.to_string().contains("destinations[0].secret_env"),
        "{err}"
    );
}

#[test]
fn api_credentials_go_to_transform_only_and_webhook_secrets_never_do() {
    let yaml = YAML.replace(
            "destinations:",
            r#"  - { name: crm, kind: hubspot, secret_env: [HS_SECRET], api: { access_token_env: HS_TOKEN, rate_per_second: 3 } }
  - name: books
    kind: quickbooks
    secret_env: [QB_VERIFIER]
    api: { client_id_env: QB_ID, client_secret_env: QB_SECRET, refresh_token_env: QB_REFRESH }
destinations:"#,
        );
    let webhook = [
        ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("HS_SECRET", "hubspot-client-secret"),
        ("QB_VERIFIER", "verifier"),
    ];
    let api = [
        ("HS_TOKEN", "pat-na1-test"),
        ("QB_ID", "client-id"),
        ("QB_SECRET", "client-secret"),
        ("QB_REFRESH", "refresh-1"),
    ];
    let ingest = Config::from_yaml_for(&yaml, &Env::from_pairs(webhook), Scope::Ingest)
        .expect("ingest needs no API credentials");
    let crm = ingest
        .source("crm")
        .and_then(|s| s.api.as_ref())
        .expect("api");
    assert!(
        crm.access_token().is_none(),
        "ingest never holds API tokens"
    );
    let transform = Config::from_yaml_for(&yaml, &Env::from_pairs(api), Scope::Transform)
        .expect("transform needs no webhook secrets");
    assert!(transform.sources.iter().all(|s| s.secrets().is_empty()));
    let crm = transform.source("crm").expect("crm");
    let crm_api = crm.api.as_ref().expect("api");
    assert_eq!(
        crm_api.access_token().map(|t| t.expose_secret()),
        Some("pat-na1-test")
    );
    assert_eq!(crm_api.base_url(crm.kind), "https://api.hubapi.com");
    assert_eq!(crm_api.rate_per_second(crm.kind), 3);
    let books = transform.source("books").expect("books");
    let books_api = books.api.as_ref().expect("api");
    assert!(books_api.refreshes());
    assert_eq!(books_api.rate_per_second(books.kind), 8);
    assert_eq!(
        books_api.token_url(books.kind),
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    );
    assert!(!format!("{transform:?}").contains("refresh-1"));
    let err = Config::from_yaml_for(&yaml, &Env::from_pairs(webhook), Scope::Transform)
        .expect_err("transform needs the API credentials");
    assert!(
        err.to_string().contains(
            "sources[2].api.refresh_token_env: environment variable QB_REFRESH is not set"
        ),
        "{err}"
    );
}

#[test]
fn only_thin_sources_take_an_api_block_and_it_must_say_how_to_authenticate() {
    let stripe = YAML.replace(
        "secret_env: [DEMO_SECRET]",
        "secret_env: [DEMO_SECRET]\n    api: { access_token_env: DEMO_SECRET }",
    );
    let err = Config::from_yaml(&stripe, &env()).expect_err("standard webhooks carry records");
    assert!(
        err.to_string().contains("sources[0].api: only hubspot"),
        "{err}"
    );
    let half = YAML.replace(
            "kind: standard-webhooks\n    secret_env: [DEMO_SECRET]",
            "kind: xero\n    secret_env: [DEMO_SECRET]\n    api: { client_id_env: DEMO_SECRET, rate_per_second: 0 }",
        );
    let err = Config::from_yaml(&half, &env()).expect_err("half an OAuth2 setup");
    let text = err.to_string();
    assert!(
        text.contains("client_id_env, client_secret_env and refresh_token_env together"),
        "{text}"
    );
    assert!(text.contains("sources[0].api.rate_per_second"), "{text}");
    // A URL that is not one is refused as it is read, with its path.
    let hostless = half.replace("rate_per_second: 0", "base_url: api.xero.com");
    let text = Config::from_yaml(&hostless, &env())
        .expect_err("not a URL")
        .to_string();
    assert!(
        text.contains("sources[0].api.base_url: \"api.xero.com\" is not a URL"),
        "{text}"
    );
}

#[test]
fn vendor_destinations_take_oauth_for_deliver_only_and_name_what_they_lack() {
    let yaml = YAML.replace(
            "flows:",
            r#"  - { name: crm, kind: hubspot, secret_env: HS_TOKEN, source_system: demo }
  - name: books
    kind: quickbooks
    realm_id: "9130357992221046"
    client_id_env: QB_ID
    client_secret_env: QB_SECRET
    refresh_token_env: QB_REFRESH
  - { name: sf, kind: salesforce, url: "https://example.my.salesforce.com", client_id_env: SF_ID, client_secret_env: SF_SECRET, refresh_token_env: SF_REFRESH }
flows:"#,
        )
        .replace(
            "destination: sink",
            "destination: sink
    fields: [email, first_name]",
        );
    let env = Env::from_pairs([
        ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("HS_TOKEN", "pat-na1-test"),
        ("QB_ID", "client-id"),
        ("QB_SECRET", "client-secret"),
        ("QB_REFRESH", "refresh-1"),
        ("SF_ID", "client-id"),
        ("SF_SECRET", "client-secret"),
        ("SF_REFRESH", "refresh-1"),
    ]);
    let deliver = Config::from_yaml_for(&yaml, &env, Scope::Deliver).expect("valid");
    let books = deliver.destination("books").expect("books");
    assert!(books.refreshes());
    assert_eq!(
        books.refresh_token().map(|t| t.expose_secret()),
        Some("refresh-1")
    );
    assert_eq!(books.base_url(), "https://quickbooks.api.intuit.com");
    assert_eq!(
        books.token_url(),
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    );
    let sf = deliver.destination("sf").expect("sf");
    assert_eq!(
        sf.token_url(),
        "https://login.salesforce.com/services/oauth2/token"
    );
    assert_eq!(
        deliver.flows[0].fields.as_deref(),
        Some(&["email".to_owned(), "first_name".to_owned()][..])
    );
    assert!(!format!("{deliver:?}").contains("refresh-1"));
    let transform =
        Config::from_yaml_for(&yaml, &Env::default(), Scope::Transform).expect("no secrets");
    assert!(
        transform
            .destinations
            .iter()
            .all(|d| d.secret().is_none() && d.refresh_token().is_none()),
        "only deliver holds destination credentials"
    );

    let bad = yaml
        .replace("    realm_id: \"9130357992221046\"\n", "")
        .replace("refresh_token_env: SF_REFRESH", "tenant_id: a/b")
        .replace("source_system: demo", "source_system: nowhere")
        .replace("[email, first_name]", "[email, shoe_size]");
    let err = Config::from_yaml_for(&bad, &env, Scope::Deliver).expect_err("invalid");
    let text = err.to_string();
    for expected in [
        "destinations[2].realm_id: a quickbooks destination needs its company id",
        "destinations[3]: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together",
        "destinations[3].tenant_id: only for xero destinations",
        "destinations[1].source_system: no source is named \"nowhere\"",
        "flows[0].fields: \"shoe_size\" is not a field of contact",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    let keyless = YAML.replace(
        "secret_env: SINK_SECRET",
        "token_url: \"https://x.example\"",
    );
    let err = Config::from_yaml(&keyless, &env).expect_err("a webhook needs its secret");
    let text = err.to_string();
    assert!(
        text.contains("destinations[0].secret_env: name the variable holding the signing secret"),
        "{text}"
    );
    assert!(
        text.contains("destinations[0]: a webhook destination takes no OAuth2 settings"),
        "{text}"
    );
}

#[test]
fn unknown_fields_are_refused() {
    let yaml = format!("{YAML}\nsurprise: 1\n");
    let err = Config::from_yaml(&yaml, &env()).expect_err("unknown field");
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn flows_take_every_canonical_object_and_value_inputs() {
    let yaml = YAML.replace(
        "object: contact",
        "object: invoice\n    minutes_per_record: 10\n    hourly_cost: 35",
    );
    let config = Config::from_yaml(&yaml, &env()).expect("valid config");
    assert_eq!(config.flows[0].object, ObjectType::Invoice);
    assert_eq!(config.flows[0].object.as_str(), "invoice");
    assert_eq!(config.flows[0].minutes_per_record, Some(10.0));
    assert_eq!(config.flows[0].hourly_cost, Some(35.0));
    let bad = YAML.replace(
        "object: contact",
        "object: contact\n    minutes_per_record: -1\n    hourly_cost: .nan",
    );
    let err = Config::from_yaml(&bad, &env()).expect_err("negative minutes");
    let text = err.to_string();
    assert!(
        text.contains("flows[0].minutes_per_record: must be a number of 0 or more"),
        "{text}"
    );
    assert!(
        text.contains("flows[0].hourly_cost: must be a number of 0 or more"),
        "{text}"
    );
}

#[test]
fn a_flow_when_names_fields_of_its_object_and_a_typo_fails_to_load() {
    let yaml = YAML.replace(
            "object: contact",
            "object: invoice\n    when: { status: paid, total.currency: EUR, deal_id: \"58213\" }\n    deal_stage: closedwon",
        );
    let config = Config::from_yaml(&yaml, &env()).expect("valid config");
    assert_eq!(config.flows[0].when.len(), 3);
    assert_eq!(config.flows[0].deal_stage.as_deref(), Some("closedwon"));
    let contact = YAML.replace(
            "object: contact",
            "object: contact\n    when: { lifecycle_stage: lead, marketing_consent: true, consent.marketing: true }",
        );
    Config::from_yaml(&contact, &env()).expect("contract names and paths both work");
    let bad = YAML.replace(
            "object: contact",
            "object: invoice\n    when: { stauts: paid, total: EUR, status: true, lifecycle_stage: lead }\n    tag: \" \"",
        );
    let text = Config::from_yaml(&bad, &env())
        .expect_err("unknown fields")
        .to_string();
    assert!(
        text.contains(
            "flows[0].when.stauts: invoice has no field \"stauts\" (it has invoice_number, status"
        ),
        "{text}"
    );
    assert!(
        text.contains("flows[0].when.total: total is a group of fields: name one of"),
        "{text}"
    );
    assert!(
        text.contains("flows[0].when.status: give a text, not true"),
        "{text}"
    );
    assert!(
        text.contains("flows[0].when.lifecycle_stage: invoice has no field"),
        "{text}"
    );
    assert!(text.contains("flows[0].tag: must not be empty"), "{text}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let config = Config::from_yaml(YAML, &env()).expect("valid config");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{debug}"
    );
}

#[test]
fn nats_credentials_come_from_the_environment() {
    let yaml = format!(
        "{YAML}\nnats:\n  user: from-file\n  password_env: FILE_NATS_PW\n  tls: {{ ca_file: /etc/ca.pem, required: true }}\n"
    );
    let mut pairs: Vec<(&str, &str)> = vec![
        ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("FILE_NATS_PW", "pw-from-named-var"),
    ];
    let config = Config::from_yaml(&yaml, &Env::from_pairs(pairs.clone())).expect("valid");
    assert_eq!(config.nats.user.as_deref(), Some("from-file"));
    assert_eq!(
        config.nats.password().map(|p| p.expose_secret()),
        Some("pw-from-named-var")
    );
    assert!(config.nats.tls.required);
    assert!(!format!("{config:?}").contains("pw-from-named-var"));

    // Per-service variables win, so one shared file serves five users.
    pairs.extend([("NATS_USER", "ingest"), ("NATS_PASSWORD", "pw-ingest")]);
    let config = Config::from_yaml(&yaml, &Env::from_pairs(pairs)).expect("valid");
    assert_eq!(config.nats.user.as_deref(), Some("ingest"));
    assert_eq!(
        config.nats.password().map(|p| p.expose_secret()),
        Some("pw-ingest")
    );

    let err = Config::from_yaml(&yaml, &env()).expect_err("named variable missing");
    assert!(
        err.to_string()
            .contains("nats.password_env: environment variable FILE_NATS_PW is not set"),
        "{err}"
    );
    let half_tls = format!("{YAML}\nnats: {{ tls: {{ cert_file: /c.pem }} }}\n");
    let err = Config::from_yaml(&half_tls, &env()).expect_err("cert without key");
    assert!(err.to_string().contains("nats.tls"), "{err}");
}

#[test]
fn values_of_the_wrong_form_are_refused_as_they_are_read_with_their_path() {
    for (from, to, path) in [
        (
            "url: http://127.0.0.1:9000/hook",
            "url: 127.0.0.1:9000/hook",
            "destinations[0].url:",
        ),
        (
            "prefix: t1",
            "prefix: t1\ndatabase: { pool_size: 0 }",
            "database.pool_size:",
        ),
    ] {
        let yaml = YAML.replace(from, to);
        let text = Config::from_yaml(&yaml, &env())
            .expect_err("refused")
            .to_string();
        assert!(text.contains(path), "{path} in {text}");
    }
}

#[test]
fn secrets_are_named_by_their_variable_and_never_printed() {
    let config = Config::from_yaml(YAML, &env()).expect("valid");
    let sink = &config.destinations[0];
    assert_eq!(
        sink.secret_env.as_ref().map(SecretRef::var),
        Some("SINK_SECRET")
    );
    assert!(sink.secret().is_some(), "resolved for Scope::All");
    let printed = format!("{config:?}");
    assert!(
        printed.contains("SecretRef(SINK_SECRET, resolved)"),
        "{printed}"
    );
    assert!(
        !printed.contains("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{printed}"
    );
}
