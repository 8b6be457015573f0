//! `switchyard`: the whole hub in one process for a laptop (`up`), a config check, and the demo
//! tools (`sink` receives deliveries, `send` fires signed sample webhooks).

// mimalloc: the services allocate per request and per message; it beats the system allocator
// under load (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod audit;
mod demo;
mod suggest;
mod up;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about = "Self-hosted integration hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run ingest, transform, dedupe, deliver and monitor in one process (still talking only over NATS).
    Up {
        #[arg(long, short, env = "SWITCHYARD_CONFIG")]
        config: PathBuf,
    },
    /// Load and validate a configuration; print every problem with its field.
    CheckConfig {
        #[arg(long, short, env = "SWITCHYARD_CONFIG")]
        config: PathBuf,
    },
    /// A local webhook receiver for the demo: verifies signatures, drops repeats, prints deliveries.
    Sink {
        #[arg(long, default_value = "127.0.0.1:9900")]
        listen: SocketAddr,
        /// Environment variable holding the destination's signing secret.
        #[arg(long, default_value = "SWITCHYARD_DEMO_SINK_SECRET")]
        secret_env: String,
    },
    /// Send signed sample contact webhooks to ingest and print the answers.
    Send {
        /// Ingest's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        ingest: String,
        /// The configured source name.
        #[arg(long, default_value = "demo")]
        source: String,
        /// Environment variable holding the source's signing secret.
        #[arg(long, default_value = "SWITCHYARD_DEMO_SOURCE_SECRET")]
        secret_env: String,
    },
    /// Audit a flow map: overlap, ROI, scorecard, pilots and payback; optionally emit a starter config.
    Audit(audit::AuditArgs),
    /// Data contracts and mappings.
    #[command(subcommand)]
    Contracts(admin::ContractsCommand),
    /// Mapping files: propose one from a sample payload (`suggest`).
    #[command(subcommand)]
    Mappings(suggest::MappingsCommand),
    /// Ask monitor's admin API (flows, health, dead letters, identity conflicts and merges, audit log).
    Admin {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard_chassis::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up { config } => up::run(&config).await,
        Command::CheckConfig { config } => {
            let env = switchyard_chassis::config::Env::from_process();
            let config = switchyard_chassis::config::Config::load(&config, &env)?;
            demo::say(&format!(
                "configuration is valid: {} sources, {} destinations, {} flows",
                config.sources.len(),
                config.destinations.len(),
                config.flows.len()
            ));
            Ok(())
        }
        Command::Sink { listen, secret_env } => demo::sink(listen, &secret_env).await,
        Command::Send {
            ingest,
            source,
            secret_env,
        } => demo::send(&ingest, &source, &secret_env).await,
        Command::Contracts(command) => admin::contracts(command),
        Command::Mappings(command) => suggest::run(command),
        Command::Admin { args, command } => admin::admin(args, command).await,
        Command::Audit(args) => audit::run(&args).await,
    }
}
