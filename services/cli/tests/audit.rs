//! `switchyard audit` end to end: the real binary on the shipped example map and on broken maps,
//! and the emitted config loaded by the product's own validation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use switchyard_chassis::config::{Config, Env};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/flowmap.example.yaml")
}

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("audit")
        .args(args)
        // Keeps error output to the message itself.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn example_text() -> String {
    std::fs::read_to_string(example()).expect("example map")
}

#[test]
fn the_text_report_shows_overlap_roi_scorecard_and_pilots() {
    let map = example();
    let out = audit(&[map.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "Integration audit — Northwind Outdoor Ltd",
        "CRM: hubspot ($890/month) and pipedrive ($149/month); licence at stake $149/month ($1,788/year)",
        "→ INTEGRATE: 1 of 3 answers are yes",
        "4.333 week(s) of re-keying per month",
        // 200 × 10 min = 33.3 h a week, × 52 ÷ 12 weeks = 144 h a calendar month, × $35.
        "shop-orders-to-books              200/wk × 10      144       $5,040           $2,520",
        "#1 shop-orders-to-books",
        "1. shop-orders-to-books: saves $5,040/month; setup $720 (12 h, estimated)",
        "✔ within 60 days",
        "crm-sync: setup $2,160, payback 12.3 weeks",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn the_json_report_carries_every_number() {
    let map = example();
    let out = audit(&[map.to_str().expect("utf-8 path"), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["settings"]["hourly_rate"], 35.0);
    assert_eq!(v["settings"]["weights"]["revenue_impact"], 25.0);
    let first = &v["flows"][0];
    assert_eq!(first["name"], "shop-orders-to-books");
    assert_eq!(first["rank"], 1);
    assert_eq!(first["roi"]["hours_per_month"], 144.0);
    assert_eq!(first["roi"]["value_per_month"], 5040.0);
    assert_eq!(first["roi"]["software_budget_per_month"], 2520.0);
    assert_eq!(first["score"], 86.0);
    assert_eq!(first["scorecard"][0]["name"], "time_saved");
    assert_eq!(first["scorecard"][0]["score"], 5);
    assert_eq!(first["payback"]["setup_cost"], 720.0);
    assert_eq!(first["payback"]["within_60_days"], true);
    assert_eq!(
        v["pilots"],
        serde_json::json!([
            "shop-orders-to-books",
            "won-deals-to-invoices",
            "shop-customers-to-crm"
        ])
    );
    let overlap = &v["overlaps"][0];
    assert_eq!(
        overlap["systems"],
        serde_json::json!(["hubspot", "pipedrive"])
    );
    assert_eq!(overlap["licence_at_stake_per_year"], 1788.0);
    assert_eq!(overlap["recommendation"], "integrate");
    assert_eq!(overlap["questions"][1]["answer"], "unknown");
    assert_eq!(overlap["questions"][1]["basis"], "missing");
    assert_eq!(v["total_value_per_month"], 8505.0);
}

#[test]
fn one_week_per_month_reproduces_the_weekly_figures() {
    let map = example();
    let out = audit(&[map.to_str().expect("utf-8 path"), "--weeks-per-month", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "1 week(s) of re-keying per month",
        "shop-orders-to-books              200/wk × 10       33       $1,155          $577.50",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn command_line_overrides_change_rate_and_weights() {
    let map = example();
    let out = audit(&[
        map.to_str().expect("utf-8 path"),
        "--json",
        "--hourly-rate",
        "50",
        "--weight",
        "time_saved=40",
        "--weight",
        "user_experience=0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["flows"][0]["roi"]["value_per_month"], 144.0 * 50.0);
    assert_eq!(v["settings"]["weights"]["time_saved"], 40.0);
    // 40 + 20 + 25 + 15: the time criterion now carries 40 points at 5 of 5.
    assert_eq!(v["flows"][0]["scorecard"][0]["points"], 40.0);

    let bad = audit(&[
        map.to_str().expect("utf-8 path"),
        "--weight",
        "time_saved=50",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("the weights add up to 120, they must add up to 100"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn broken_maps_fail_with_the_line_and_field() {
    let dir = scratch("broken");
    let cases = [
        (
            example_text().replace("volume_per_week: 200", "volume_per_week: lots"),
            "line 53, column 22: flows[0].volume_per_week: invalid type: string \"lots\", expected f64",
        ),
        (
            example_text().replace(
                "to: quickbooks\n    objects: [order]",
                "to: quickbook\n    objects: [order]",
            ),
            "line 49, column 9: flows[0].to: no system is named \"quickbook\"",
        ),
        (
            example_text().replace("objects: [invoice]", "objects: [invoices]"),
            "flows[4].objects[0]: unknown variant `invoices`",
        ),
        (
            example_text().replace("category: marketing", "category: newsletters"),
            "line 39, column 15: systems[3].category: unknown variant `newsletters`",
        ),
        (
            example_text().replace("error_rate_percent: 8", "error_rate_percent: 180"),
            "line 76, column 25: flows[2].error_rate_percent: 180 is not a percentage between 0 and 100",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("map{i}.yaml"));
        std::fs::write(&path, text).expect("write map");
        let out = audit(&[path.to_str().expect("utf-8 path")]);
        assert!(!out.status.success(), "case {i} should fail");
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "case {i}: expected {expected:?} in:\n{err}"
        );
        assert!(err.contains(&format!("map{i}.yaml: line")), "{err}");
        assert!(out.stdout.is_empty(), "no report for a broken map");
    }
}

#[test]
fn the_emitted_config_passes_the_products_validation() {
    let dir = scratch("emit");
    let target = dir.join("switchyard.yaml");
    let map = example();
    let flag = format!("--emit-config={}", target.display());
    let out = audit(&[map.to_str().expect("utf-8 path"), &flag]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 flows for pilots"),
        "{}",
        stdout(&out)
    );

    let yaml = std::fs::read_to_string(&target).expect("config written");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let env = Env::from_pairs([
        ("SWITCHYARD_SHOPIFY_SOURCE_SECRET", secret),
        ("SWITCHYARD_PIPEDRIVE_SOURCE_SECRET", secret),
        ("SWITCHYARD_QUICKBOOKS_DESTINATION_SECRET", secret),
        ("SWITCHYARD_HUBSPOT_DESTINATION_SECRET", secret),
    ]);
    let config = Config::from_yaml(&yaml, &env).expect("the emitted config is valid");
    assert_eq!(config.flows.len(), 3);
    let orders = config
        .flows
        .iter()
        .find(|f| f.name == "shopify-to-quickbooks-order")
        .expect("the order flow");
    assert_eq!(orders.object.as_str(), "order");
    assert_eq!(orders.minutes_per_record, Some(10.0));
    assert_eq!(orders.hourly_cost, Some(35.0));
    assert!(config.destination("quickbooks").is_some());
    // Without its secrets the same file is refused, naming the variable.
    let err = Config::from_yaml(&yaml, &Env::default()).expect_err("secrets missing");
    assert!(
        err.to_string().contains("SWITCHYARD_SHOPIFY_SOURCE_SECRET"),
        "{err}"
    );

    let checklist =
        std::fs::read_to_string(dir.join("switchyard.contracts.md")).expect("checklist written");
    assert!(checklist.contains("## order"), "{checklist}");
    assert!(checklist.contains("PLACEHOLDER URL"), "{checklist}");

    // A second run does not overwrite without --force.
    let again = audit(&[map.to_str().expect("utf-8 path"), &flag]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("pass --force"),
        "{}",
        stderr(&again)
    );
    let forced = audit(&[map.to_str().expect("utf-8 path"), &flag, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
}

/// `--actual` against a real monitor (its admin API, NATS and its own database): deliveries
/// reported for one of the emitted flows show up beside that flow's estimate.
#[tokio::test]
async fn actual_puts_measured_deliveries_beside_the_estimates() {
    use prost::Message as _;
    use switchyard_chassis::config::{Config, Env};
    use switchyard_chassis::testkit;
    use switchyard_proto::v1::{DeliveryOutcome, DeliveryResult};

    let prefix = testkit::unique("aud");
    let database = testkit::fresh_database("aud").await.expect("database");
    let nats = testkit::nats_url();
    let yaml = format!(
        r#"
prefix: {prefix}
nats: {{ url: "{nats}" }}
database: {{ url: "{database}", pool_size: 2 }}
monitor: {{ ops_listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", read_token_env: AUDIT_READ }}
destinations:
  - {{ name: quickbooks, kind: webhook, url: "https://replace-me.invalid/q", secret_env: DST }}
flows:
  - {{ name: shopify-to-quickbooks-order, object: order, destination: quickbooks, minutes_per_record: 10, hourly_cost: 35 }}
"#
    );
    let env = Env::from_pairs([
        ("AUDIT_READ", "audit-read-token"),
        ("DST", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ]);
    let config = Config::from_yaml(&yaml, &env).expect("config");
    let shutdown = switchyard_chassis::CancellationToken::new();
    let monitor = switchyard_monitor::App::build(config, shutdown.clone())
        .await
        .expect("monitor");
    let admin = format!("http://{}", monitor.admin_addr());
    let ops = format!("http://{}", monitor.ops_addr());
    let task = tokio::spawn(monitor.run());

    // Three deliveries reported on the OPS stream, as deliver reports them.
    let client = switchyard_chassis::async_nats::connect(&nats)
        .await
        .expect("nats");
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    for i in 0..3 {
        let result = DeliveryResult {
            flow: "shopify-to-quickbooks-order".to_owned(),
            destination: "quickbooks".to_owned(),
            change_id: format!("g{i}:1"),
            outcome: DeliveryOutcome::Delivered.into(),
            http_status: 200,
            ..Default::default()
        };
        let mut headers = switchyard_chassis::async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("ops:test:{i}").as_str());
        js.publish_with_headers(
            format!("{prefix}.ops.delivery.shopify-to-quickbooks-order"),
            headers,
            result.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
    let line =
        r#"switchyard_flow_events_total{flow="shopify-to-quickbooks-order",outcome="delivered"} 3"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = reqwest::get(format!("{ops}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.contains(line) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "monitor never counted the deliveries"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let map = example();
    let run = |token: &'static str| {
        let admin = admin.clone();
        let map = map.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args([
                    "audit",
                    map.to_str().expect("utf-8 path"),
                    "--actual",
                    "--admin",
                    &admin,
                    "--token-env",
                    "AUDIT_TOKEN",
                ])
                .env("AUDIT_TOKEN", token)
                .env("RUST_BACKTRACE", "0")
                .output()
                .expect("the binary runs")
        })
    };
    let out = run("audit-read-token").await.expect("join");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.contains("shopify-to-quickbooks-order"))
        .unwrap_or_else(|| panic!("{text}"));
    // 3 deliveries × 10 min = 0.5 h, × $35/h = $17.50, beside the 144 h estimate.
    assert!(
        row.contains("shop-orders-to-books") && row.contains("144 h $5040"),
        "{row}"
    );
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &fields[fields.len() - 3..],
        &["3", "0.5", "$17.50"],
        "{row}"
    );
    assert!(
        text.contains("(not running)"),
        "the other pilots are not running: {text}"
    );

    let refused = run("wrong-token").await.expect("join");
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("token"), "{}", stderr(&refused));

    shutdown.cancel();
    let _ = task.await;
    testkit::delete_streams(&nats, &prefix).await;
    testkit::drop_database(&database).await;
}
