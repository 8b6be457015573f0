//! `switchyard-loadgen`: sends signed Standard Webhooks contact events to ingest, open loop at a
//! fixed offered rate (latency measured from each request's scheduled time, so a stalled server
//! cannot hide its queueing) or closed loop as fast as a number of connections allows, and prints
//! accepted rate, status counts and latency percentiles.

// mimalloc: the services allocate per request and per message; it beats the system allocator
// under load (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;
use cli::{Cli, Command};

mod cli;
mod dedupe;
mod e2e;
mod ingest;
mod pacing;
mod payload;
mod purge;
mod report;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::command(args).await,
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
        Command::Purge { nats, prefix } => purge::streams(&nats, &prefix).await,
    }
}
