//! Dedupe's throughput, measured on the real service: canonical contacts preloaded into the
//! CANONICAL stream while dedupe is stopped, then timed from the first message dedupe takes to
//! the last it acknowledges — no HTTP, transform or delivery in the figure.

use std::time::{Duration, Instant};

use prost::Message as _;
use switchyard_chassis::async_nats::{self, HeaderMap, jetstream};
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_proto::v1::{CanonicalObject, Contact, Envelope, canonical_object};

/// Publishes `count` canonical contacts: `people` creations, then updates of the same people.
pub async fn load(nats: &str, prefix: &str, count: u64, people: u64) -> anyhow::Result<()> {
    let client = async_nats::connect(nats).await?;
    let js = jetstream::new(client);
    let names = Names::new(prefix);
    let subject = names.canonical("contact", "bench");
    let people = people.max(1);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(1024);
    for i in 0..count {
        let person = i % people;
        let round = i / people;
        // US numbers in the 212 area with a valid exchange: every person has their own.
        let phone = format!(
            "+1 212 {} {:04}",
            200 + (person / 10_000) % 800,
            person % 10_000
        );
        let object = CanonicalObject {
            envelope: Some(Envelope {
                event_id: format!("bench:{prefix}:{i}"),
                source_system: "bench".to_owned(),
                source_kind: "standard-webhooks".to_owned(),
                source_object_id: format!("p{person}"),
                occurred_at: Some(switchyard_proto::Timestamp {
                    seconds: 1_795_000_000 + i64::try_from(round).unwrap_or(0) * 60,
                    nanos: 0,
                }),
                received_at: None,
                contract_version: "contact/v1".to_owned(),
                event_type: "contact.updated".to_owned(),
            }),
            object: Some(canonical_object::Object::Contact(Contact {
                email: format!("person{person}@bench.example"),
                phone,
                first_name: format!("First{round}"),
                last_name: format!("Last{person}"),
                lifecycle_stage: "lead".to_owned(),
                ..Default::default()
            })),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("canonical:bench:{prefix}:{i}").as_str(),
        );
        acks.push(
            js.publish_with_headers(subject.clone(), headers, object.encode_to_vec().into())
                .await?,
        );
        // A bounded window of unacknowledged publishes keeps memory flat and the store honest.
        if acks.len() == 1024 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    crate::report::say(&format!(
        "preloaded {count} canonical contacts ({people} people) in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Waits for dedupe's consumer to take its first message and to finish; prints the rate.
pub async fn drain(nats: &str, prefix: &str, label: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats).await?;
    let js = jetstream::new(client);
    let names = Names::new(prefix);
    let stream_name = names.stream(StreamKind::Canonical);
    let durable = names.consumer("dedupe");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "dedupe did not drain within 10 minutes"
        );
        let mut stream = js.get_stream(&stream_name).await?;
        let Ok(mut consumer) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(&durable)
            .await
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let info = consumer.info().await?;
        let total = stream.info().await?.state.messages;
        let acked = info.ack_floor.stream_sequence;
        if first.is_none() && info.delivered.stream_sequence > 0 {
            first = Some((Instant::now(), acked));
        }
        if let Some((start, acked_at_start)) = first
            && info.num_pending == 0
            && info.num_ack_pending == 0
        {
            let seconds = start.elapsed().as_secs_f64();
            let resolved = total.saturating_sub(acked_at_start);
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            let rate = resolved as f64 / seconds.max(0.001);
            crate::report::say(&format!(
                "{label}: {resolved} contacts resolved in {seconds:.2}s = {rate:.0}/s"
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
