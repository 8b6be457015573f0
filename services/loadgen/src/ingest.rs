//! `ingest`: signed webhooks sent to one ingest source at the load asked for, each answer
//! tallied; end to end, the sink's report of what was delivered follows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use secrecy::SecretString;
use switchyard_chassis::signing::SigningKey;

use crate::cli::IngestArgs;
use crate::e2e;
use crate::pacing::{Backoff, closed_loop, open_loop};
use crate::payload::Webhook;
use crate::report::{self, Tally};

/// Runs `ingest`: the load as asked, its result line, then (end to end) the sink's report.
pub async fn command(args: IngestArgs) -> anyhow::Result<()> {
    let IngestArgs {
        url,
        secret_env,
        rate,
        duration,
        connections,
        label,
        sink_listen,
        drain,
        honour_retry_after,
    } = args;
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

/// The shape of the load: how fast, how long, over how many connections, and whether the
/// sender backs off when told to.
struct Load {
    rate: u64,
    duration: Duration,
    connections: usize,
    honour_retry_after: bool,
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
                let Webhook {
                    id,
                    record_id,
                    body,
                } = Webhook::contact_updated(&run_id, i);
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
    report::result(label, rate, sent, elapsed, &tally, &histogram);
    if honour_retry_after {
        report::held(
            label,
            backoff.told.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
    Ok(std::mem::take(&mut tally.accepted))
}
