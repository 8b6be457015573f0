//! Back-pressure: how far transform lags behind the RAW stream. Past `ingest.max_lag` new webhooks
//! get 429 with `Retry-After`, so senders slow down and delivered throughput holds at its peak
//! instead of collapsing under an ever-growing backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats::jetstream::consumer::PullConsumer;
use switchyard_chassis::bus::{Bus, StreamKind};

/// The last measured backlog, shared with the request handlers.
#[derive(Debug, Clone)]
pub struct Backlog {
    bus: Bus,
    max_lag: u64,
    lag: Arc<AtomicU64>,
}

impl Backlog {
    pub fn new(bus: Bus, max_lag: u64) -> Self {
        Self {
            bus,
            max_lag,
            lag: Arc::default(),
        }
    }

    /// True when transform is further behind than allowed.
    pub fn overloaded(&self) -> bool {
        self.max_lag > 0 && self.lag.load(Ordering::Relaxed) > self.max_lag
    }

    /// Measures the backlog twice a second until shutdown.
    pub async fn watch(self, shutdown: CancellationToken) {
        if self.max_lag == 0 {
            return;
        }
        let names = self.bus.names().clone();
        let js = switchyard_chassis::async_nats::jetstream::new(self.bus.client().clone());
        loop {
            let measured = async {
                let stream = js.get_stream(names.stream(StreamKind::Raw)).await.ok()?;
                let mut consumer: PullConsumer = stream
                    .get_consumer(&names.consumer("transform"))
                    .await
                    .ok()?;
                let info = consumer.info().await.ok()?;
                Some(info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0))
            }
            .await;
            // No transform consumer yet means nothing is lagging.
            self.lag.store(measured.unwrap_or(0), Ordering::Relaxed);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
