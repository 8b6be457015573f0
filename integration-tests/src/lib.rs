//! A harness that runs the five services in-process, each on its own shutdown token, against the
//! real NATS and PostgreSQL, with a recording sink as the destination. Every pipeline gets its own
//! prefix and database.

mod mock_oauth;
pub mod sink;
pub mod vendor_apis;
pub mod vendors;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard_chassis::async_nats::jetstream;
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_chassis::config::{Config, Env};
use switchyard_chassis::{CancellationToken, Error, testkit};
use tokio::task::JoinHandle;

pub use sink::{Received, Sink};

/// The services of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Ingest,
    Transform,
    Dedupe,
    Deliver,
    Monitor,
}

impl Service {
    /// The service's name, as in roles, schemas and binaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Transform => "transform",
            Self::Dedupe => "dedupe",
            Self::Deliver => "deliver",
            Self::Monitor => "monitor",
        }
    }

    pub const ALL: [Service; 5] = [
        Self::Ingest,
        Self::Transform,
        Self::Dedupe,
        Self::Deliver,
        Self::Monitor,
    ];
}

/// The name of the one flow every pipeline has.
pub const FLOW: &str = "contacts";

/// Knobs a test may turn.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_attempts: u32,
    /// Give each service its own NATS user (as deployed) instead of the anonymous default.
    pub nats_users: Option<NatsUsers>,
    /// Transform's directory of user mappings (`transform.mappings_dir`).
    pub mappings_dir: Option<std::path::PathBuf>,
    /// Give each service its own PostgreSQL role and schema, made by the shipped
    /// `deploy/compose/postgres-init.sh`, instead of one superuser connection.
    pub database_roles: bool,
    /// More sources, destinations and flows (YAML list items), and the variables their secrets
    /// are in.
    pub extra_sources: String,
    pub extra_destinations: String,
    pub extra_flows: String,
    pub extra_env: Vec<(String, String)>,
    /// More keys of monitor's settings, e.g. `alerts: { bucket: 2s }` (YAML flow-mapping entries).
    pub extra_monitor: String,
    /// More keys of the `sink` destination, e.g. `, circuit_breaker: { failures: 1000 }`.
    pub sink_extra: String,
}

/// Per-service PostgreSQL logins made by `deploy/compose/postgres-init.sh`.
#[derive(Debug, Clone)]
pub struct DatabaseRoles {
    /// Role name prefix (unique per pipeline: roles are cluster-wide).
    pub prefix: String,
    /// Each service's connection string.
    pub urls: HashMap<Service, String>,
}

impl DatabaseRoles {
    /// Runs the shipped init script against `database_url`'s database.
    fn create(database_url: &str) -> Self {
        let db = database_url
            .split_whitespace()
            .find_map(|p| p.strip_prefix("dbname="))
            .expect("a key=value test database URL")
            .to_owned();
        let prefix = format!("{}_", testkit::unique("syr"));
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/compose/postgres-init.sh"
        );
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        let mut command = std::process::Command::new("sh");
        command
            .arg(script)
            .env("POSTGRES_USER", &user)
            .env("POSTGRES_DB", &db)
            .env("PGHOST", "/var/run/postgresql")
            .env("SWITCHYARD_ROLE_PREFIX", &prefix);
        let mut urls = HashMap::new();
        for service in Service::ALL {
            let name = service.name();
            let password = testkit::unique("pw");
            command.env(
                format!("SWITCHYARD_{}_DB_PASSWORD", name.to_uppercase()),
                &password,
            );
            urls.insert(
                service,
                format!("host=127.0.0.1 user={prefix}{name} password={password} dbname={db}"),
            );
        }
        let output = command.output().expect("postgres-init.sh runs");
        assert!(
            output.status.success(),
            "postgres-init.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self { prefix, urls }
    }

    /// Drops the roles (after their database is gone).
    async fn drop(&self) {
        let Ok((client, connection)) =
            tokio_postgres::connect(&testkit::admin_database_url(), tokio_postgres::NoTls).await
        else {
            return;
        };
        tokio::spawn(connection);
        for service in Service::ALL {
            let _ = client
                .batch_execute(&format!(
                    "DROP ROLE IF EXISTS \"{}{}\"",
                    self.prefix,
                    service.name()
                ))
                .await;
        }
    }
}

/// Secrets of the vendor sources every pipeline also has (test values, not secrets).
pub const STRIPE_SECRET: &str = "whsec_test_stripe";
pub const MAILCHIMP_TOKEN: &str = "mc-test-token";
pub const SALESFORCE_ORG: &str = "00D000000000062EAA";
/// Admin API bearer tokens of every pipeline (read-only and operator).
pub const ADMIN_READ_TOKEN: &str = "read-token-for-tests";
pub const ADMIN_OPERATOR_TOKEN: &str = "operator-token-for-tests";

impl Default for Options {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            nats_users: None,
            mappings_dir: None,
            database_roles: false,
            extra_sources: String::new(),
            extra_destinations: String::new(),
            extra_flows: String::new(),
            extra_env: Vec::new(),
            extra_monitor: String::new(),
            sink_extra: String::new(),
        }
    }
}

/// A NATS server with one user per service, as the Helm chart sets it up.
#[derive(Debug, Clone)]
pub struct NatsUsers {
    /// The prefix the users' permissions were generated for.
    pub prefix: String,
    /// The server's URL. The harness's own connections (watching streams and consumers,
    /// clean-up) carry no credentials, so the server must map those to an unrestricted user
    /// (`no_auth_user`); the services log in as their own users.
    pub url: String,
    /// Each service's user name and password.
    pub users: HashMap<Service, (String, String)>,
}

struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
    ops: String,
}

/// A whole pipeline under test.
#[allow(missing_debug_implementations)]
pub struct Pipeline {
    pub prefix: String,
    pub nats_url: String,
    pub database_url: String,
    pub source_secret: String,
    pub sink: Sink,
    config: Config,
    nats_users: Option<NatsUsers>,
    /// Per-service database logins, when the pipeline runs with them.
    pub database_roles: Option<DatabaseRoles>,
    ingest_url: String,
    /// Monitor's admin gRPC API.
    pub admin_url: String,
    /// Monitor's HTML dashboard, `http://127.0.0.1:<port>`.
    pub dashboard_url: String,
    running: HashMap<Service, Running>,
    /// Further dedupe replicas beside the one in `running`, sharing its consumer and database.
    extra_dedupes: Vec<Running>,
    /// The configuration text and the variables it names, so a service can also be run as a
    /// child process of its real binary ([`Pipeline::spawn_binary`]).
    yaml: String,
    env: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Pipeline {
    /// Starts a sink and all five services.
    pub async fn start(options: Options) -> Self {
        let prefix = options
            .nats_users
            .as_ref()
            .map_or_else(|| testkit::unique("it"), |users| users.prefix.clone());
        let (nats_url, service_nats_url) = match &options.nats_users {
            Some(users) => (users.url.clone(), users.url.clone()),
            None => (testkit::nats_url(), testkit::nats_url()),
        };
        let database_url = testkit::fresh_database("it").await.expect("test database");
        let sink = Sink::start().await;
        let source_secret = testkit::random_secret();
        let yaml = format!(
            r#"
prefix: {prefix}
nats: {{ url: "{service_nats_url}" }}
database: {{ url: "{database_url}", pool_size: 4 }}
ingest: {{ listen: "127.0.0.1:0", ops_listen: "127.0.0.1:0" }}
transform: {{ ops_listen: "127.0.0.1:0"{mappings} }}
dedupe: {{ ops_listen: "127.0.0.1:0" }}
deliver: {{ ops_listen: "127.0.0.1:0" }}
monitor: {{ ops_listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", dashboard_listen: "127.0.0.1:0", read_token_env: ADMIN_READ, operator_token_env: ADMIN_OPERATOR{extra_monitor} }}
sources:
  - {{ name: demo, kind: standard-webhooks, secret_env: [SRC_SECRET] }}
  - {{ name: stripe, kind: stripe, secret_env: [STRIPE_SECRET] }}
  - {{ name: mailchimp, kind: mailchimp, secret_env: [MAILCHIMP_TOKEN] }}
  - {{ name: salesforce, kind: salesforce, organization_id: "{SALESFORCE_ORG}" }}
{extra_sources}
destinations:
  - {{ name: sink, kind: webhook, url: "{}/contacts", secret_env: DST_SECRET, timeout: 2s{sink_extra} }}
{extra_destinations}
flows:
  - {{ name: {FLOW}, object: contact, destination: sink, max_attempts: {}, retry_base: 50ms, retry_max: 1s }}
{extra_flows}
"#,
            sink.url(),
            options.max_attempts,
            extra_sources = options.extra_sources,
            extra_destinations = options.extra_destinations,
            extra_flows = options.extra_flows,
            sink_extra = options.sink_extra,
            extra_monitor = if options.extra_monitor.is_empty() {
                String::new()
            } else {
                format!(", {}", options.extra_monitor)
            },
            mappings = options
                .mappings_dir
                .as_ref()
                .map(|dir| format!(", mappings_dir: \"{}\"", dir.display()))
                .unwrap_or_default(),
        );
        let mut pairs: Vec<(String, String)> = options.extra_env.clone();
        pairs.extend(
            [
                ("SRC_SECRET", source_secret.as_str()),
                ("DST_SECRET", sink.secret()),
                ("STRIPE_SECRET", STRIPE_SECRET),
                ("MAILCHIMP_TOKEN", MAILCHIMP_TOKEN),
                ("ADMIN_READ", ADMIN_READ_TOKEN),
                ("ADMIN_OPERATOR", ADMIN_OPERATOR_TOKEN),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let env = Env::from_pairs(pairs.clone());
        let config = Config::from_yaml(&yaml, &env).expect("pipeline config is valid");
        let mut pipeline = Self {
            prefix,
            nats_url,
            database_url,
            source_secret,
            sink,
            config,
            nats_users: options.nats_users,
            database_roles: None,
            ingest_url: String::new(),
            admin_url: String::new(),
            dashboard_url: String::new(),
            running: HashMap::new(),
            extra_dedupes: Vec::new(),
            yaml,
            env: pairs,
            http: reqwest::Client::new(),
        };
        if options.database_roles {
            pipeline.database_roles = Some(DatabaseRoles::create(&pipeline.database_url));
        }
        for service in Service::ALL {
            pipeline.start_service(service).await;
        }
        pipeline
    }

    /// Starts (or restarts) one service.
    pub async fn start_service(&mut self, service: Service) {
        let shutdown = CancellationToken::new();
        let mut config = self.config.clone();
        if let Some((user, password)) = self
            .nats_users
            .as_ref()
            .and_then(|users| users.users.get(&service))
        {
            config.nats.user = Some(user.clone());
            config.nats.password_env = Some(switchyard_chassis::config::SecretRef::resolved(
                "NATS_PASSWORD",
                password,
            ));
        }
        if let Some(url) = self
            .database_roles
            .as_ref()
            .and_then(|r| r.urls.get(&service))
        {
            config.database.url = url.clone().into();
        }
        let (task, ops) = match service {
            Service::Ingest => {
                let app = switchyard_ingest::App::build(config, shutdown.clone())
                    .await
                    .expect("ingest starts");
                self.ingest_url = format!("http://{}", app.addr());
                let ops = app.ops_addr();
                (tokio::spawn(app.run()), ops)
            }
            Service::Transform => {
                let app = switchyard_transform::App::build(config, shutdown.clone())
                    .await
                    .expect("transform starts");
                let ops = app.ops_addr();
                (tokio::spawn(app.run()), ops)
            }
            Service::Dedupe => {
                let app = switchyard_dedupe::App::build(config, shutdown.clone())
                    .await
                    .expect("dedupe starts");
                let ops = app.ops_addr();
                (tokio::spawn(app.run()), ops)
            }
            Service::Deliver => {
                let app = switchyard_deliver::App::build(config, shutdown.clone())
                    .await
                    .expect("deliver starts");
                let ops = app.ops_addr();
                (tokio::spawn(app.run()), ops)
            }
            Service::Monitor => {
                let app = switchyard_monitor::App::build(config, shutdown.clone())
                    .await
                    .expect("monitor starts");
                self.admin_url = format!("http://{}", app.admin_addr());
                if let Some(dashboard) = app.dashboard_addr() {
                    self.dashboard_url = format!("http://{dashboard}");
                }
                let ops = app.ops_addr();
                (tokio::spawn(app.run()), ops)
            }
        };
        self.running.insert(
            service,
            Running {
                shutdown,
                task,
                ops: format!("http://{ops}"),
            },
        );
    }

    /// Starts one more dedupe replica with the same configuration (a fresh shutdown token): it
    /// pulls from the same durable consumer, so replicas share the work as they would deployed.
    /// `finish` stops it.
    pub async fn start_extra_dedupe(&mut self) {
        let shutdown = CancellationToken::new();
        let app = switchyard_dedupe::App::build(self.config.clone(), shutdown.clone())
            .await
            .expect("extra dedupe starts");
        let ops = format!("http://{}", app.ops_addr());
        self.extra_dedupes.push(Running {
            shutdown,
            task: tokio::spawn(app.run()),
            ops,
        });
    }

    /// Kills a service abruptly: its task is aborted wherever it is, nothing is drained.
    pub async fn abort_service(&mut self, service: Service) {
        if let Some(running) = self.running.remove(&service) {
            running.task.abort();
            let _ = running.task.await;
            // The ops listener runs on its own task; free it like process exit would.
            running.shutdown.cancel();
        }
    }

    /// Runs a service's real binary (e.g. `switchyard-deliver`) as a child process with this
    /// pipeline's configuration, so a test can SIGKILL it (`Child::kill`) where aborting an
    /// in-process task would still run destructors. Stop the in-process one first.
    pub fn spawn_binary(&self, binary: &std::path::Path) -> std::process::Child {
        let path = std::env::temp_dir().join(format!("{}.yaml", self.prefix));
        std::fs::write(&path, &self.yaml).expect("config file written");
        std::process::Command::new(binary)
            .arg("--config")
            .arg(&path)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()))
    }

    /// Stops a service gracefully and returns what its run returned.
    pub async fn stop_service(&mut self, service: Service) {
        if let Some(running) = self.running.remove(&service) {
            running.shutdown.cancel();
            let result = running.task.await.expect("service task");
            result.expect("service stopped cleanly");
        }
    }

    /// POSTs a signed webhook to ingest's `demo` source.
    pub async fn send(&self, id: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let body = serde_json::to_vec(body).expect("json");
        let headers = testkit::signed_headers(
            &self.source_secret,
            id,
            switchyard_chassis::unix_now(),
            &body,
        );
        let mut request = self
            .http
            .post(format!("{}/v1/webhooks/demo", self.ingest_url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("ingest answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Any request to ingest's `/v1/webhooks/{path}`; answers the status and body text.
    pub async fn send_to(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}/v1/webhooks/{path}", self.ingest_url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("ingest answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Republishes a dead letter (by its DLQ stream sequence) to where it came from.
    pub async fn replay(&self, sequence: u64) {
        let client = switchyard_chassis::async_nats::connect(&self.nats_url)
            .await
            .expect("nats");
        switchyard_chassis::bus::replay_dead_letter(&client, &Names::new(&self.prefix), sequence)
            .await
            .expect("replayed");
    }

    /// Waits until every stage's consumer has nothing pending and nothing unacknowledged, checked
    /// in pipeline order in one pass (each stage publishes before it acks, so a clean pass means
    /// everything accepted so far has reached its end).
    pub async fn wait_drained(&self, within: Duration) {
        let client = switchyard_chassis::async_nats::connect(&self.nats_url)
            .await
            .expect("nats");
        let js = jetstream::new(client);
        let names = Names::new(&self.prefix);
        let mut consumers = vec![
            (StreamKind::Raw, "transform".to_owned()),
            (StreamKind::Canonical, "dedupe".to_owned()),
        ];
        // Every flow's consumer, before monitor's (flows report to monitor).
        for flow in &self.config.flows {
            consumers.push((StreamKind::Golden, format!("deliver-{}", flow.name)));
        }
        consumers.push((StreamKind::Ops, "monitor".to_owned()));
        let deadline = Instant::now() + within;
        'poll: loop {
            assert!(
                Instant::now() < deadline,
                "pipeline did not drain within {within:?}"
            );
            for (stream, name) in &consumers {
                let stream = js.get_stream(names.stream(*stream)).await.expect("stream");
                let mut consumer: jetstream::consumer::PullConsumer = stream
                    .get_consumer(&names.consumer(name))
                    .await
                    .expect("consumer");
                let info = consumer.info().await.expect("consumer info");
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'poll;
                }
            }
            return;
        }
    }

    /// A value from a service's `/metrics`, by the start of its line.
    pub async fn metric(&self, service: Service, line_start: &str) -> Option<f64> {
        let ops = &self.running.get(&service)?.ops;
        self.metric_at(ops, line_start).await
    }

    /// A value from the `/metrics` of the extra dedupe replica started `index`-th (from 0).
    pub async fn extra_dedupe_metric(&self, index: usize, line_start: &str) -> Option<f64> {
        let ops = &self.extra_dedupes.get(index)?.ops;
        self.metric_at(ops, line_start).await
    }

    async fn metric_at(&self, ops: &str, line_start: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{ops}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// A flow count from monitor's `/metrics`.
    pub async fn flow_count(&self, outcome: &str) -> Option<f64> {
        let line = format!(r#"switchyard_flow_events_total{{flow="{FLOW}",outcome="{outcome}"}}"#);
        self.metric(Service::Monitor, &line).await
    }

    /// A client on the pipeline's database.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .expect("test database");
        tokio::spawn(connection);
        client
    }

    /// The messages stored in a stream, oldest first.
    pub async fn stream_messages(
        &self,
        kind: StreamKind,
    ) -> Vec<jetstream::message::StreamMessage> {
        let client = switchyard_chassis::async_nats::connect(&self.nats_url)
            .await
            .expect("nats");
        let js = jetstream::new(client);
        let mut stream = js
            .get_stream(Names::new(&self.prefix).stream(kind))
            .await
            .expect("stream");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut messages = Vec::new();
        if state.messages > 0 {
            for seq in state.first_sequence..=state.last_sequence {
                if let Ok(message) = stream.get_raw_message(seq).await {
                    messages.push(message);
                }
            }
        }
        messages
    }

    /// The dead letters of deliver's flow `flow`, oldest first, with their DLQ stream sequences.
    pub async fn flow_dead_letters(
        &self,
        flow: &str,
    ) -> Vec<(u64, switchyard_proto::v1::DeadLetter)> {
        use prost::Message as _;
        let subject = Names::new(&self.prefix).dlq("deliver", flow);
        self.stream_messages(StreamKind::Dlq)
            .await
            .into_iter()
            .filter(|m| m.subject.as_str() == subject)
            .map(|m| {
                let letter = switchyard_proto::v1::DeadLetter::decode(m.payload.as_ref())
                    .expect("dead letter");
                (m.sequence, letter)
            })
            .collect()
    }

    /// Stops everything and removes the prefix's streams and the database.
    pub async fn finish(mut self) {
        for service in Service::ALL {
            self.stop_service(service).await;
        }
        for extra in std::mem::take(&mut self.extra_dedupes) {
            extra.shutdown.cancel();
            let result = extra.task.await.expect("extra dedupe task");
            result.expect("extra dedupe stopped cleanly");
        }
        // The file `spawn_binary` wrote, if any.
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{}.yaml", self.prefix)));
        testkit::delete_streams(&self.nats_url, &self.prefix).await;
        testkit::drop_database(&self.database_url).await;
        if let Some(roles) = &self.database_roles {
            roles.drop().await;
        }
    }
}

/// An admin API request carrying `token` as its bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}
