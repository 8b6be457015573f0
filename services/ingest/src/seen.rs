//! The long-lived record of accepted event ids: JetStream's duplicate window covers minutes, this
//! covers `ingest.dedupe_retention`. Both sides fail open — if PostgreSQL is away, JetStream's
//! window and dedupe's own per-event record still keep retries from doubling anything.

use std::collections::HashSet;
use std::time::Duration;

use switchyard_chassis::CancellationToken;
use switchyard_chassis::deadpool_postgres::Pool;

/// Looks ids up in batches: concurrent requests share one query, so under load the database sees
/// a few large `= ANY($1)` reads instead of one round trip per webhook.
#[derive(Debug, Clone)]
pub struct Lookup {
    queue: tokio::sync::mpsc::Sender<(Vec<String>, tokio::sync::oneshot::Sender<HashSet<String>>)>,
}

type Ask = (Vec<String>, tokio::sync::oneshot::Sender<HashSet<String>>);

impl Lookup {
    /// Starts `workers` lookup tasks (each runs one query at a time).
    pub fn start(pool: Pool, workers: usize) -> Self {
        let (queue, rx) = tokio::sync::mpsc::channel::<Ask>(16_384);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(lookup_batches(pool.clone(), rx.clone()));
        }
        Self { queue }
    }

    /// The ids among `ids` that were accepted before. Fails open (empty) when the database is
    /// away: JetStream's window and dedupe's own record still catch recent repeats.
    pub async fn known(&self, ids: &[String]) -> HashSet<String> {
        if ids.is_empty() {
            return HashSet::new();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.queue.send((ids.to_vec(), tx)).await.is_err() {
            return HashSet::new();
        }
        rx.await.unwrap_or_default()
    }
}

async fn lookup_batches(
    pool: Pool,
    rx: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Ask>>>,
) {
    let mut asks: Vec<Ask> = Vec::with_capacity(256);
    loop {
        asks.clear();
        let received = rx.lock().await.recv_many(&mut asks, 256).await;
        if received == 0 {
            return;
        }
        let ids: Vec<&String> = asks.iter().flat_map(|(ids, _)| ids.iter()).collect();
        let found: HashSet<String> = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let rows = client
                .query("SELECT event_id FROM accepted_events WHERE event_id = ANY($1)", &[&ids])
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        }
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "accepted-event lookup failed; relying on JetStream's duplicate window");
            HashSet::new()
        });
        for (ids, reply) in asks.drain(..) {
            let mine = ids.into_iter().filter(|id| found.contains(id)).collect();
            let _ = reply.send(mine);
        }
    }
}

/// Queues accepted ids for the background writer, off the request path: the event is already
/// stored in JetStream, whose window covers the moments before the row lands.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: tokio::sync::mpsc::Sender<String>,
}

impl Recorder {
    /// Starts the writer; it drains the queue in batches until shutdown.
    pub fn start(pool: Pool, shutdown: CancellationToken) -> Self {
        let (queue, rx) = tokio::sync::mpsc::channel(65_536);
        tokio::spawn(write_batches(pool, rx, shutdown));
        Self { queue }
    }

    /// Records `ids` (those not already `known`) as accepted.
    pub fn remember(&self, ids: &[String], known: &HashSet<String>) {
        for id in ids.iter().filter(|id| !known.contains(*id)) {
            if self.queue.try_send(id.clone()).is_err() {
                tracing::warn!(
                    "accepted-event queue full; relying on JetStream's duplicate window"
                );
                return;
            }
        }
    }
}

/// How long the writer lets a batch of accepted ids fill once it holds one.
const WRITE_LINGER: Duration = Duration::from_millis(20);

async fn write_batches(
    pool: Pool,
    mut rx: tokio::sync::mpsc::Receiver<String>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(1024);
    loop {
        batch.clear();
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, 1024) => n,
            () = shutdown.cancelled() => {
                // Take what is already queued, then stop.
                rx.close();
                rx.recv_many(&mut batch, 65_536).await
            }
        };
        if received == 0 {
            return;
        }
        // Off the request path, so a batch may wait a little to fill: at a steady 1,000
        // webhooks a second that is one transaction per `WRITE_LINGER` instead of nearly one
        // per webhook (four statements each).
        let deadline = tokio::time::Instant::now() + WRITE_LINGER;
        while batch.len() < 1024 && !shutdown.is_cancelled() {
            let room = 1024 - batch.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let insert = async {
            let mut client = pool.get().await.map_err(|e| e.to_string())?;
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            // Losing the last few rows in a database crash is harmless (JetStream's window and
            // dedupe's own record still hold), so skip the WAL flush on every commit.
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
                .await
                .map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO accepted_events (event_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                &[&batch],
            )
            .await
            .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())
        };
        if let Err(error) = insert.await {
            tracing::warn!(%error, ids = batch.len(), "accepted events not recorded; relying on JetStream's duplicate window");
        }
    }
}

/// Deletes records older than `retention`, hourly, until shutdown.
pub async fn prune(pool: Pool, retention: Duration, shutdown: CancellationToken) {
    let seconds = f64::from(u32::try_from(retention.as_secs()).unwrap_or(u32::MAX));
    loop {
        let result = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .execute(
                    "DELETE FROM accepted_events WHERE accepted_at < now() - make_interval(secs => $1)",
                    &[&seconds],
                )
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(deleted) if deleted > 0 => tracing::info!(deleted, "pruned old accepted-event ids"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning accepted-event ids failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
