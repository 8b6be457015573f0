//! `switchyard up`: all five services in one process, each with its own ops port, sharing one
//! shutdown signal. They still talk only over NATS, exactly as when deployed apart.

use std::path::Path;

use switchyard_chassis::config::{Config, Env};
use switchyard_chassis::{shutdown, telemetry};

pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path, &Env::from_process())?;
    let _telemetry = telemetry::init("switchyard", &config.telemetry)?;
    let stop = shutdown::on_signals();
    let ingest = switchyard_ingest::App::build(config.clone(), stop.clone()).await?;
    let transform = switchyard_transform::App::build(config.clone(), stop.clone()).await?;
    let dedupe = switchyard_dedupe::App::build(config.clone(), stop.clone()).await?;
    let deliver = switchyard_deliver::App::build(config.clone(), stop.clone()).await?;
    let monitor = switchyard_monitor::App::build(config.clone(), stop.clone()).await?;

    let addr = ingest.addr();
    for source in &config.sources {
        tracing::info!(url = %format!("http://{addr}/v1/webhooks/{}", source.name), "ingest ready for source {}", source.name);
    }
    tracing::info!(
        ingest = %ingest.ops_addr(),
        transform = %transform.ops_addr(),
        dedupe = %dedupe.ops_addr(),
        deliver = %deliver.ops_addr(),
        monitor = %monitor.ops_addr(),
        "ops endpoints (/healthz, /readyz, /metrics)"
    );
    tracing::info!(admin = %monitor.admin_addr(), "admin gRPC API");
    // One service failing stops the others, so the process never runs half a pipeline.
    let guard = |result: Result<(), switchyard_chassis::Error>,
                 stop: &switchyard_chassis::CancellationToken| {
        if result.is_err() {
            stop.cancel();
        }
        result
    };
    let (a, b, c, d, e) = tokio::join!(
        async { guard(ingest.run().await, &stop) },
        async { guard(transform.run().await, &stop) },
        async { guard(dedupe.run().await, &stop) },
        async { guard(deliver.run().await, &stop) },
        async { guard(monitor.run().await, &stop) },
    );
    a?;
    b?;
    c?;
    d?;
    e?;
    Ok(())
}
