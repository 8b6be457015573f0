//! Consumer lag and dead-letter depth on `/metrics`: every `monitor.backlog_every`, the unfinished
//! messages of each stage's durable consumer (transform, dedupe, each flow's deliver, monitor)
//! and the dead letters held per stage and flow or source, as JetStream counts them. These are
//! the two numbers an SRE asks first when a flow goes quiet: is it stuck behind a backlog, or is
//! it failing into the DLQ?

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats::jetstream::{self, consumer::pull};
use switchyard_chassis::bus::{Bus, StreamKind};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabel {
    /// `transform`, `dedupe`, `deliver-<flow>` or `monitor`: bounded by the configuration.
    consumer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet, PartialOrd, Ord)]
struct DlqLabel {
    stage: String,
    /// The flow (deliver) or source (transform, dedupe) the letters belong to.
    key: String,
}

/// Reads the backlog on a timer.
#[derive(Debug)]
pub(crate) struct Backlog {
    bus: Bus,
    every: Duration,
    /// (label, stream, durable consumer) of every stage.
    consumers: Vec<(String, String, String)>,
    lag: Family<ConsumerLabel, Gauge>,
    dlq: Family<DlqLabel, Gauge>,
}

impl Backlog {
    /// The gauges, registered, for the stages of `flows`.
    pub(crate) fn register(
        registry: &mut Registry,
        bus: Bus,
        flows: &[String],
        every: Duration,
    ) -> Self {
        let lag = Family::<ConsumerLabel, Gauge>::default();
        registry.register_with_unit(
            "consumer_lag",
            "Messages a stage's durable consumer has not finished (pending plus delivered but unacknowledged)",
            Unit::Other("messages".to_owned()),
            lag.clone(),
        );
        let dlq = Family::<DlqLabel, Gauge>::default();
        registry.register_with_unit(
            "dlq_depth",
            "Dead letters held, by stage and flow or source",
            Unit::Other("messages".to_owned()),
            dlq.clone(),
        );
        let names = bus.names();
        let mut consumers = vec![
            (
                "transform".to_owned(),
                names.stream(StreamKind::Raw),
                names.consumer("transform"),
            ),
            (
                "dedupe".to_owned(),
                names.stream(StreamKind::Canonical),
                names.consumer("dedupe"),
            ),
            (
                "monitor".to_owned(),
                names.stream(StreamKind::Ops),
                names.consumer("monitor"),
            ),
        ];
        consumers.extend(flows.iter().map(|flow| {
            let durable = format!("deliver-{flow}");
            (
                durable.clone(),
                names.stream(StreamKind::Golden),
                names.consumer(&durable),
            )
        }));
        Self {
            bus,
            every,
            consumers,
            lag,
            dlq,
        }
    }

    /// Reads every `every` until shutdown.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let js = jetstream::new(self.bus.client().clone());
        let mut seen = BTreeSet::new();
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.read_lag(&js).await;
            if let Err(error) = self.read_dlq(&js, &mut seen).await {
                tracing::warn!(%error, "dead-letter depth not read; trying again next round");
            }
        }
    }

    async fn read_lag(&self, js: &jetstream::Context) {
        for (label, stream, durable) in &self.consumers {
            // A stage whose consumer does not exist yet keeps its last reading (none at first).
            let Ok(consumer) = js
                .get_consumer_from_stream::<pull::Config, _, _>(durable, stream)
                .await
            else {
                continue;
            };
            let info = consumer.cached_info();
            let unfinished = info
                .num_pending
                .saturating_add(u64::try_from(info.num_ack_pending).unwrap_or(0));
            self.lag
                .get_or_create(&ConsumerLabel {
                    consumer: label.clone(),
                })
                .set(i64::try_from(unfinished).unwrap_or(i64::MAX));
        }
    }

    /// Counts per `<prefix>.dlq.<stage>.<key>` subject; a subject that emptied (retention,
    /// purge) goes back to 0 rather than keeping its last count.
    async fn read_dlq(
        &self,
        js: &jetstream::Context,
        seen: &mut BTreeSet<DlqLabel>,
    ) -> Result<(), String> {
        let names = self.bus.names();
        let stream = js
            .get_stream(names.stream(StreamKind::Dlq))
            .await
            .map_err(|e| e.to_string())?;
        let prefix = format!("{}.dlq.", names.prefix());
        let mut subjects = stream
            .info_with_subjects(format!("{prefix}>"))
            .await
            .map_err(|e| e.to_string())?;
        let mut now = BTreeSet::new();
        while let Some(entry) = subjects.next().await {
            let (subject, count) = entry.map_err(|e| e.to_string())?;
            let Some((stage, key)) = subject
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('.'))
            else {
                continue;
            };
            let label = DlqLabel {
                stage: stage.to_owned(),
                key: key.to_owned(),
            };
            self.dlq
                .get_or_create(&label)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
            now.insert(label);
        }
        for gone in seen.difference(&now) {
            self.dlq.get_or_create(gone).set(0);
        }
        *seen = now;
        Ok(())
    }
}
