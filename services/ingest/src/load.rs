//! Back-pressure: how far the pipeline behind ingest lags. Every stage's durable consumer —
//! transform on RAW, dedupe on CANONICAL, each flow's `deliver-<flow>` on GOLDEN — is measured
//! twice a second; past `ingest.max_lag` for any of them, new webhooks get 429 with
//! `Retry-After`, so senders slow down and delivered throughput holds at its peak instead of
//! collapsing under an ever-growing backlog. Watching transform alone let a slow deliver pile up
//! work until JetStream itself stopped acknowledging publishes in time (503s).
//!
//! Publishes awaiting JetStream's ack are counted too: a pile of them means the server is
//! saturated before any consumer's backlog shows it, and is answered the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats::jetstream::consumer::pull;
use switchyard_chassis::bus::{Bus, StreamKind};

/// Publishes awaiting JetStream's ack past which new webhooks are refused with 429: far above
/// what a healthy server holds (a few hundred at 10k events/s and tens of milliseconds per ack),
/// far below what piles up once acks take seconds.
pub const MAX_PUBLISHES_IN_FLIGHT: usize = 2048;

/// The last measured backlog, shared with the request handlers.
#[derive(Debug, Clone)]
pub struct Backlog {
    bus: Bus,
    max_lag: u64,
    /// (stream, durable consumer) of every stage behind ingest.
    consumers: Arc<Vec<(String, String)>>,
    /// The most unfinished messages any stage has, as last measured (also exported).
    lag: Gauge<u64, AtomicU64>,
    in_flight: Arc<AtomicUsize>,
}

/// Counts one request's publishes as in flight until dropped.
#[derive(Debug)]
pub struct InFlight {
    count: Arc<AtomicUsize>,
    events: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(self.events, Ordering::Relaxed);
    }
}

impl Backlog {
    /// Watches transform, dedupe and one deliver consumer per flow in `flows`.
    pub fn new(bus: Bus, max_lag: u64, flows: &[String]) -> Self {
        let names = bus.names();
        let mut consumers = vec![
            (names.stream(StreamKind::Raw), names.consumer("transform")),
            (
                names.stream(StreamKind::Canonical),
                names.consumer("dedupe"),
            ),
        ];
        for flow in flows {
            consumers.push((
                names.stream(StreamKind::Golden),
                names.consumer(&format!("deliver-{flow}")),
            ));
        }
        Self {
            bus,
            max_lag,
            consumers: Arc::new(consumers),
            lag: Gauge::default(),
            in_flight: Arc::default(),
        }
    }

    /// True when a stage is further behind than allowed, or JetStream is not keeping up with the
    /// publishes already sent.
    pub fn overloaded(&self) -> bool {
        (self.max_lag > 0 && self.lag.get() > self.max_lag)
            || self.in_flight.load(Ordering::Relaxed) > MAX_PUBLISHES_IN_FLIGHT
    }

    /// Counts `events` publishes as in flight while the returned guard lives.
    pub fn publishing(&self, events: usize) -> InFlight {
        self.in_flight.fetch_add(events, Ordering::Relaxed);
        InFlight {
            count: self.in_flight.clone(),
            events,
        }
    }

    /// The most unfinished messages any stage has (pending plus delivered but unacknowledged),
    /// as last measured: a gauge to export.
    pub fn lag_gauge(&self) -> Gauge<u64, AtomicU64> {
        self.lag.clone()
    }

    /// Measures the backlog twice a second until shutdown.
    pub async fn watch(self, shutdown: CancellationToken) {
        if self.max_lag == 0 {
            return;
        }
        let js = switchyard_chassis::async_nats::jetstream::new(self.bus.client().clone());
        loop {
            let readings = self.consumers.iter().map(|(stream, durable)| {
                let js = &js;
                async move {
                    let consumer = js
                        .get_consumer_from_stream::<pull::Config, _, _>(durable, stream)
                        .await
                        .ok()?;
                    let info = consumer.cached_info();
                    Some(info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0))
                }
            });
            // A stage whose consumer does not exist yet (or cannot be read) lags nothing.
            let lag = futures::future::join_all(readings)
                .await
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(0);
            self.lag.set(lag);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
