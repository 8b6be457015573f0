//! The `switchyard-transform` binary: parse → config → telemetry → build → run until stopped.

// mimalloc: the services allocate per request and per message; it beats the system allocator
// under load (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;
use switchyard_chassis::{ServiceArgs, shutdown, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard_chassis::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let config = ServiceArgs::parse().load(switchyard_chassis::config::Scope::Transform)?;
    let _telemetry = telemetry::init("switchyard-transform", &config.telemetry)?;
    let app = switchyard_transform::App::build(config, shutdown::on_signals()).await?;
    app.run().await?;
    Ok(())
}
