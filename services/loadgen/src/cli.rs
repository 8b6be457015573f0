//! The command line: `ingest` (webhook load, optionally end to end), `dedupe-load` and
//! `dedupe-drain` (dedupe's throughput) and `purge` (a benchmark prefix's streams).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "switchyard-loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send webhooks to one ingest source.
    Ingest(IngestArgs),
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

// The arguments of `ingest` (a plain comment: clap would print a doc comment as the help text).
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The source's webhook URL.
    #[arg(long)]
    pub url: String,
    /// Environment variable holding the source's `whsec_` secret.
    #[arg(long, default_value = "SWITCHYARD_BENCH_SECRET")]
    pub secret_env: String,
    /// Offered requests per second; 0 sends as fast as the connections allow.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent connections in closed-loop mode (and the cap on requests in flight).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// A label for the printed result line.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// End to end: also serve the destination on this address (the flow's webhook URL) and
    /// report delivered rate and end-to-end latency, webhook sent → destination answered.
    #[arg(long)]
    pub sink_listen: Option<std::net::SocketAddr>,
    /// How long to wait for the deliveries after the last send.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Behave as a webhook sender that honours `Retry-After`: after a 429 it sends nothing
    /// until the time it was given has passed, then carries on at the offered rate (the
    /// refused webhook is not sent again). Without it the load is open loop whatever ingest
    /// answers.
    #[arg(long)]
    pub honour_retry_after: bool,
}
