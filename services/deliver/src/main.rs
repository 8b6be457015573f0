//! The `switchyard-deliver` binary: parse → config → telemetry → build → run until stopped.

use clap::Parser as _;
use switchyard_chassis::{ServiceArgs, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServiceArgs::parse().load()?;
    let _telemetry = telemetry::init("switchyard-deliver", &config.telemetry)?;
    let app = switchyard_deliver::App::build(config, shutdown::on_signals()).await?;
    app.run().await?;
    Ok(())
}
