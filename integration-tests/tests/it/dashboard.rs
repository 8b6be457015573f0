//! Monitor's HTML dashboard in headless Chromium (through chromedriver and fantoccini) over a
//! real pipeline: an operator logs in, sees the flow's figures, opens a dead letter and replays it
//! through the confirmation page; a read-only session sees the pages but cannot replay; no page
//! leaves an error in the browser's console.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, FLOW, Options, Pipeline,
};
use switchyard_proto::v1::ListAuditRequest;
use switchyard_proto::v1::admin_client::AdminClient;
use tonic::Request;

const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is checked again while waiting for it.
const POLL: Duration = Duration::from_millis(200);

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    _process: tokio::process::Child,
    url: String,
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bin = std::env::var("SWITCHYARD_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let process = tokio::process::Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts (scripts/deps.sh installs chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "chromedriver did not answer on {url}");
    Driver {
        _process: process,
        url,
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let chrome = std::env::var("SWITCHYARD_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let binary = which(&chrome).unwrap_or(chrome);
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            // No sandbox: CI and this test often run as root, where Chromium's sandbox refuses.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        }),
    );
    // The console, for the check that no page logs an error.
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    // fantoccini's hyper-rustls and reqwest enable both of rustls' providers, so it cannot pick
    // one by itself; ring is what the workspace uses. Failing means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// Waits until the browser is on `path`: a click that submits a form may return before the
/// next page has loaded.
async fn wait_for_path(client: &Client, path: &str) {
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            if client.current_url().await.is_ok_and(|u| u.path() == path)
                && client.find(Locator::Css("h1")).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the browser did not reach {path}");
}

async fn login(client: &Client, base: &str, token: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    client
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type token");
    client
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .expect("log in button")
        .click()
        .await
        .expect("log in");
    // Logged in lands on the flows page.
    wait_for_path(client, "/").await;
}

/// The text of each cell of the flow's row, reloading the flows page until `ready` holds.
async fn flow_cells(client: &Client, base: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            client.goto(&format!("{base}/")).await.expect("flows page");
            let mut cells = Vec::new();
            for cell in client
                .find_all(Locator::Css(&format!("tr[data-flow='{FLOW}'] td")))
                .await
                .expect("flow row")
            {
                cells.push(cell.text().await.expect("cell text"));
            }
            if ready(&cells) {
                return cells;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    reached.expect("the flows page shows the expected figures")
}

/// What the browser's console received at level SEVERE since the last call (a failed resource
/// load, such as a missing icon, a script error), through chromedriver's log endpoint.
async fn console_errors(driver: &Driver, client: &Client) -> Vec<String> {
    let session = client
        .session_id()
        .await
        .expect("session id")
        .expect("a session");
    let logs: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("chromedriver log endpoint")
        .json()
        .await
        .expect("log entries");
    logs["value"]
        .as_array()
        .expect("a list of entries")
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn buttons(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for b in client
        .find_all(Locator::Css("button"))
        .await
        .expect("buttons")
    {
        out.push(b.text().await.expect("button text"));
    }
    out
}

#[tokio::test]
async fn operators_replay_from_the_dashboard_and_read_only_sessions_cannot() {
    let pipeline = Pipeline::start(Options::default()).await;
    // The destination refuses the first write (a dead letter) and takes the rest.
    pipeline.sink.script(&[400], 200);
    for (id, crm) in [("d1", "crm-d1"), ("d2", "crm-d2")] {
        let event = json!({"type": "contact.created", "data": {"id": crm, "email": format!("{crm}@example.com")}});
        assert_eq!(pipeline.send(id, &event).await.0, 200);
        // One at a time, so the scripted 400 lands on the first.
        pipeline
            .sink
            .wait_for(if id == "d1" { 1 } else { 2 }, WAIT)
            .await;
    }
    pipeline.wait_drained(WAIT).await;
    let base = pipeline.dashboard_url.clone();
    assert!(!base.is_empty(), "monitor serves the dashboard");

    let driver = start_driver().await;
    let client = browser(&driver).await;

    // Not logged in: every page sends you to the login form.
    client.goto(&format!("{base}/dlq")).await.expect("dlq");
    assert_eq!(client.current_url().await.expect("url").path(), "/login");

    login(&client, &base, ADMIN_OPERATOR_TOKEN).await;
    let session = client
        .get_named_cookie("switchyard_session")
        .await
        .expect("session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_ne!(
        session.value(),
        ADMIN_OPERATOR_TOKEN,
        "a session, not the token"
    );
    assert!(
        !client
            .source()
            .await
            .expect("source")
            .contains(ADMIN_OPERATOR_TOKEN),
        "the token is never in a page"
    );
    let cells = flow_cells(&client, &base, |c| {
        c.len() == 8
            && c[2].contains("total 2")
            && c[3].contains("total 1")
            && c[5].contains("total 1")
    })
    .await;
    assert_eq!(cells[0], FLOW);
    assert!(
        ["ok", "warning", "failing"]
            .iter()
            .any(|s| cells[1].starts_with(s)),
        "health status: {cells:?}"
    );
    assert_ne!(cells[6], "never", "freshness shows the last delivery");

    // The dead letter: list, inspect, confirm, replay.
    client.goto(&format!("{base}/dlq")).await.expect("dlq");
    let link = client
        .find(Locator::Css("table a[href^='/dlq/']"))
        .await
        .expect("one dead letter");
    let sequence: u64 = link.text().await.expect("seq").parse().expect("sequence");
    link.click().await.expect("open letter");
    wait_for_path(&client, &format!("/dlq/{sequence}")).await;
    let letter = client
        .find(Locator::Css("table"))
        .await
        .expect("letter")
        .text()
        .await
        .expect("text");
    assert!(letter.contains("destination answered 400"), "{letter}");
    client
        .find(Locator::Css(&format!(
            "form[action='/dlq/{sequence}/replay'] button"
        )))
        .await
        .expect("replay button for operators")
        .click()
        .await
        .expect("to confirmation");
    // A confirmation step before anything happens.
    wait_for_path(&client, &format!("/dlq/{sequence}/replay")).await;
    assert_eq!(
        pipeline.sink.received().len(),
        2,
        "nothing replayed before confirming"
    );
    client
        .find(Locator::Css("button[name=confirm]"))
        .await
        .expect("Replay button")
        .click()
        .await
        .expect("replay");
    let done = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("replayed"))
        .await
        .expect("replayed")
        .text()
        .await
        .expect("text");
    assert!(
        done.contains(&format!("{}.golden.contact", pipeline.prefix)),
        "{done}"
    );

    pipeline.sink.wait_for(3, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let received = pipeline.sink.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![400, 200, 200],
        "the letter arrived exactly once more"
    );
    assert_eq!(
        received[0].webhook_id, received[2].webhook_id,
        "the dead-lettered change"
    );
    flow_cells(&client, &base, |c| c.len() == 8 && c[3].contains("total 2")).await;

    let mut admin = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let audit = || {
        let mut request = Request::new(ListAuditRequest { limit: 1000 });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {ADMIN_READ_TOKEN}")
                .parse()
                .expect("header"),
        );
        request
    };
    let entries = admin
        .list_audit(audit())
        .await
        .expect("audit")
        .into_inner()
        .entries;
    // Deliver's destination writes are audited too; this test is about the operator's actions.
    let operator = |e: &switchyard_proto::v1::AuditEntry| e.action != "destination.write";
    let entries: Vec<_> = entries.into_iter().filter(operator).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            entries[0].role.as_str(),
            entries[0].action.as_str(),
            entries[0].target.as_str()
        ),
        ("operator", "dlq.replay", format!("dlq:{sequence}").as_str())
    );

    // Read-only: every page, no replay.
    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("log out")
        .click()
        .await
        .expect("logged out");
    wait_for_path(&client, "/login").await;
    login(&client, &base, ADMIN_READ_TOKEN).await;
    for path in [
        "/",
        "/alerts",
        "/dlq",
        "/drift",
        "/conflicts",
        "/golden/contact/none",
    ] {
        client.goto(&format!("{base}{path}")).await.expect("page");
        assert_eq!(
            client.current_url().await.expect("url").path(),
            path,
            "read role sees {path}"
        );
        assert!(client.find(Locator::Css("h1")).await.is_ok());
    }
    // Every page the session opened, logged in or not, kept the console clean.
    assert_eq!(
        console_errors(&driver, &client).await,
        Vec::<String>::new(),
        "console errors"
    );
    client
        .goto(&format!("{base}/dlq/{sequence}"))
        .await
        .expect("letter");
    let shown = buttons(&client).await;
    assert!(
        !shown.iter().any(|b| b.contains("Replay")),
        "no replay button: {shown:?}"
    );
    let read_session = client
        .get_named_cookie("switchyard_session")
        .await
        .expect("read session");
    let refused = reqwest::Client::new()
        .post(format!("{base}/dlq/{sequence}/replay"))
        .header(
            "cookie",
            format!("switchyard_session={}", read_session.value()),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("confirm=yes")
        .send()
        .await
        .expect("replay POST");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    pipeline.wait_drained(WAIT).await;
    assert_eq!(
        pipeline.sink.received().len(),
        3,
        "the refused replay sent nothing"
    );
    let entries = admin
        .list_audit(audit())
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let entries: Vec<_> = entries.into_iter().filter(operator).collect();
    assert_eq!(entries.len(), 1, "a refused replay is not an action");

    client.close().await.expect("close browser");
    pipeline.finish().await;
}
