//! `switchyard-loadgen`: sends signed Standard Webhooks contact events to ingest, open loop at a
//! fixed offered rate (latency measured from each request's scheduled time, so a stalled server
//! cannot hide its queueing) or closed loop as fast as a number of connections allows, and prints
//! accepted rate, status counts and latency percentiles.

// mimalloc: the services allocate per request and per message; it beats the system allocator
// under load (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use secrecy::SecretString;
use switchyard_chassis::signing::SigningKey;

mod dedupe;
mod e2e;

#[derive(Debug, Parser)]
#[command(name = "switchyard-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send webhooks to one ingest source.
    Ingest {
        /// The source's webhook URL.
        #[arg(long)]
        url: String,
        /// Environment variable holding the source's `whsec_` secret.
        #[arg(long, default_value = "SWITCHYARD_BENCH_SECRET")]
        secret_env: String,
        /// Offered requests per second; 0 sends as fast as the connections allow.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Concurrent connections in closed-loop mode (and the cap on requests in flight).
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// A label for the printed result line.
        #[arg(long, default_value = "run")]
        label: String,
        /// End to end: also serve the destination on this address (the flow's webhook URL) and
        /// report delivered rate and end-to-end latency, webhook sent → destination answered.
        #[arg(long)]
        sink_listen: Option<std::net::SocketAddr>,
        /// How long to wait for the deliveries after the last send.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        drain: Duration,
        /// Behave as a webhook sender that honours `Retry-After`: after a 429 it sends nothing
        /// until the time it was given has passed, then carries on at the offered rate (the
        /// refused webhook is not sent again). Without it the load is open loop whatever ingest
        /// answers.
        #[arg(long)]
        honour_retry_after: bool,
    },
    /// Preload canonical contacts for dedupe (run while dedupe is stopped): `people` new people,
    /// then updates to them until `count` events.
    DedupeLoad {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 50_000)]
        count: u64,
        #[arg(long, default_value_t = 25_000)]
        people: u64,
    },
    /// Time dedupe draining what is in its consumer: from the first message it takes to the last
    /// it acknowledges; prints contacts resolved per second.
    DedupeDrain {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value = "dedupe")]
        label: String,
    },
    /// Delete the streams of a benchmark prefix.
    Purge {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Debug, Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    /// Record ids of the webhooks ingest accepted (2xx): the sender's side of the ledger.
    accepted: std::collections::HashSet<String>,
}

fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest {
            url,
            secret_env,
            rate,
            duration,
            connections,
            label,
            sink_listen,
            drain,
            honour_retry_after,
        } => {
            let secret = std::env::var(&secret_env)
                .map_err(|_| anyhow::anyhow!("environment variable {secret_env} is not set"))?;
            let key = Arc::new(SigningKey::from_secret(&SecretString::from(secret))?);
            let sink = match sink_listen {
                Some(addr) => Some(e2e::Sink::start(addr).await?),
                None => None,
            };
            let load = Load {
                rate,
                duration,
                connections,
                honour_retry_after,
            };
            let accepted = run(&url, key, &load, &label).await?;
            if let Some(sink) = sink {
                sink.report(&accepted, drain, &label).await;
            }
            Ok(())
        }
        Command::DedupeLoad {
            nats,
            prefix,
            count,
            people,
        } => dedupe::load(&nats, &prefix, count, people).await,
        Command::DedupeDrain {
            nats,
            prefix,
            label,
        } => dedupe::drain(&nats, &prefix, &label).await,
        Command::Purge { nats, prefix } => {
            switchyard_chassis_purge(&nats, &prefix).await;
            Ok(())
        }
    }
}

async fn switchyard_chassis_purge(nats: &str, prefix: &str) {
    let Ok(client) = switchyard_chassis::async_nats::connect(nats).await else {
        return;
    };
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    let names = switchyard_chassis::bus::Names::new(prefix);
    for kind in switchyard_chassis::bus::StreamKind::ALL {
        let _ = js.delete_stream(names.stream(kind)).await;
    }
}

/// The shape of the load: how fast, how long, over how many connections, and whether the
/// sender backs off when told to.
struct Load {
    rate: u64,
    duration: Duration,
    connections: usize,
    honour_retry_after: bool,
}

/// Until when a sender honouring `Retry-After` holds its sends, in microseconds since the run
/// started (0: not holding), and how often it was told to.
#[derive(Debug, Default)]
struct Backoff {
    until_micros: std::sync::atomic::AtomicU64,
    told: std::sync::atomic::AtomicU64,
}

impl Backoff {
    fn hold(&self, started: Instant, retry_after: Duration) {
        let until = started.elapsed() + retry_after;
        let until = u64::try_from(until.as_micros()).unwrap_or(u64::MAX);
        self.until_micros
            .fetch_max(until, std::sync::atomic::Ordering::Relaxed);
        self.told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long sends are still held, if they are.
    fn left(&self, started: Instant) -> Option<Duration> {
        let until =
            Duration::from_micros(self.until_micros.load(std::sync::atomic::Ordering::Relaxed));
        until
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
    }
}

async fn run(
    url: &str,
    key: Arc<SigningKey>,
    load: &Load,
    label: &str,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let Load {
        rate,
        duration,
        connections,
        honour_retry_after,
    } = *load;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let backoff = Arc::new(Backoff::default());
    let send = {
        let (client, key, histogram, tally, url, run_id, backoff) = (
            client.clone(),
            key.clone(),
            histogram.clone(),
            tally.clone(),
            url.to_owned(),
            run_id.clone(),
            backoff.clone(),
        );
        move |i: u64, scheduled: Instant| {
            let (client, key, histogram, tally, url, run_id, backoff) = (
                client.clone(),
                key.clone(),
                histogram.clone(),
                tally.clone(),
                url.clone(),
                run_id.clone(),
                backoff.clone(),
            );
            async move {
                let id = format!("bench_{}_{i}", &run_id[..12]);
                // The record id carries the send time, so the end-to-end sink can time it.
                let record_id = format!("crm-{i}-{}", e2e::now_micros());
                let body = serde_json::to_vec(&serde_json::json!({
                    "type": "contact.updated",
                    "data": { "id": &record_id, "email": format!("person{i}.{}@example.com", &run_id[..6]), "first_name": "Bench", "last_name": format!("{i}") }
                }))
                .unwrap_or_default();
                let ts = switchyard_chassis::unix_now();
                let mut request = client.post(&url).header("content-type", "application/json");
                for (name, value) in key.headers(&id, ts, &body) {
                    request = request.header(name, value);
                }
                let result = request.body(body).send().await;
                let micros = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut tally = tally
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match result {
                    Ok(response) => {
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok());
                        if let (true, 429, Some(secs)) =
                            (honour_retry_after, response.status().as_u16(), retry_after)
                        {
                            backoff.hold(started, Duration::from_secs(secs));
                        }
                        *tally
                            .statuses
                            .entry(response.status().as_u16())
                            .or_default() += 1;
                        if response.status().is_success() {
                            tally.accepted.insert(record_id.clone());
                            let _ = histogram
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .record(micros.max(1));
                        }
                    }
                    Err(_) => tally.errors += 1,
                }
            }
        }
    };
    let sent = if rate == 0 {
        closed_loop(send, duration, connections, &backoff, started).await
    } else {
        open_loop(send, rate, duration, connections, &backoff, started).await
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let histogram = histogram
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ok: u64 = tally
        .statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let accepted_rate = ok as f64 / elapsed;
    say(&format!(
        "{label}: offered={} sent={sent} accepted={ok} ({accepted_rate:.0}/s) statuses={:?} errors={} latency_ms p50={:.2} p90={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        if rate == 0 {
            "max".to_owned()
        } else {
            format!("{rate}/s")
        },
        tally.statuses,
        tally.errors,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    ));
    if honour_retry_after {
        say(&format!(
            "{label}: told to retry later {} times; every send held for the Retry-After given",
            backoff.told.load(std::sync::atomic::Ordering::Relaxed)
        ));
    }
    Ok(std::mem::take(&mut tally.accepted))
}

/// `connections` workers, each sending its next request when the previous one is answered.
async fn closed_loop<F, Fut>(
    send: F,
    duration: Duration,
    connections: usize,
    backoff: &Arc<Backoff>,
    started: Instant,
) -> u64
where
    F: Fn(u64, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (send, counter, backoff) = (send.clone(), counter.clone(), backoff.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if let Some(left) = backoff.left(started) {
                        tokio::time::sleep(left).await;
                        continue;
                    }
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    send(i, Instant::now()).await;
                }
            })
        })
        .collect();
    futures::future::join_all(workers).await;
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

/// One request every 1/rate seconds, whatever the answers do (unless the sender honours
/// `Retry-After`: then the schedule moves on by each hold); at most `in_flight` outstanding.
async fn open_loop<F, Fut>(
    send: F,
    rate: u64,
    duration: Duration,
    in_flight: usize,
    backoff: &Backoff,
    started: Instant,
) -> u64
where
    F: Fn(u64, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut start = Instant::now();
    let deadline = start + duration;
    let total = rate.saturating_mul(duration.as_secs().max(1));
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1) * 16));
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let (mut sent, mut held) = (0, false);
    for i in 0..total {
        if let Some(left) = backoff.left(started) {
            // What was not sent while held is sent later, at the same pace: the sender queues.
            // The run still ends on time; what is left then was never offered.
            tokio::time::sleep(left).await;
            start += left;
            held = true;
        }
        if held && Instant::now() >= deadline {
            break;
        }
        sent += 1;
        let scheduled = start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            send(i, scheduled).await;
            drop(permit);
        }));
    }
    futures::future::join_all(tasks).await;
    sent
}
