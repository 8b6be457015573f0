//! Group commit for the `deliveries` table. Every lane of every flow hands its "delivered
//! before?" look-up and its "delivered" record to one batcher task, which gathers what arrives
//! together (up to `MAX_BATCH`, lingering at most `LINGER` once it holds one) and answers them
//! with one `SELECT … = ANY` per flow and one multi-row `INSERT` — pipelined on one connection —
//! instead of one round trip and one commit each. A record is answered only once its `INSERT`
//! has committed, so a lane still acks only after its record is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_chassis::deadpool_postgres::Pool;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Requests answered by one batch at most; more wait for the next.
const MAX_BATCH: usize = 512;
/// How long a batch that holds a request waits for more: short against a delivery's own latency,
/// long enough for the other lanes' requests of the same moment to join it.
const LINGER: Duration = Duration::from_millis(1);
/// Batches running at once (each on its own pooled connection): while they run, what arrives
/// queues and goes in the next, so batches grow with the load instead of the latency.
const IN_FLIGHT: usize = 3;

/// Why a batch failed (the database); the waiting deliveries are retried.
pub(crate) type StoreError = String;

/// A look-up waiting for its answer: the change id, and where the answer goes.
type Waiting = (String, oneshot::Sender<Result<Option<u16>, StoreError>>);

#[derive(Debug)]
enum Request {
    /// Whether `(flow, change_id)` was delivered, and with which status.
    Lookup {
        flow: Arc<str>,
        change_id: String,
        answer: oneshot::Sender<Result<Option<u16>, StoreError>>,
    },
    /// The flow delivered the change: its idempotency record.
    Record {
        row: Row,
        answer: oneshot::Sender<Result<(), StoreError>>,
    },
}

#[derive(Debug)]
struct Row {
    flow: Arc<str>,
    change_id: String,
    destination: String,
    status: i32,
    attempts: i32,
}

/// Hands look-ups and records to the batcher task (cheap to clone). The task stops once every
/// handle is dropped, after answering what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Deliveries {
    queue: mpsc::Sender<Request>,
}

impl Deliveries {
    /// Starts the batcher task on `pool`.
    pub(crate) fn start(pool: Pool) -> Self {
        let (queue, inbox) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(pool, inbox));
        Self { queue }
    }

    /// The status the flow delivered the change with, if it did.
    pub(crate) async fn delivered(
        &self,
        flow: &str,
        change_id: &str,
    ) -> Result<Option<u16>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.ask(Request::Lookup {
            flow: flow.into(),
            change_id: change_id.to_owned(),
            answer,
        })
        .await?;
        answered.await.map_err(|_| stopped())?
    }

    /// Records the delivery; returns once the row is committed (or was there already).
    pub(crate) async fn record(
        &self,
        flow: &str,
        change_id: &str,
        destination: &str,
        status: u16,
        attempt: u64,
    ) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        self.ask(Request::Record {
            row: Row {
                flow: flow.into(),
                change_id: change_id.to_owned(),
                destination: destination.to_owned(),
                status: i32::from(status),
                attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
            },
            answer,
        })
        .await?;
        answered.await.map_err(|_| stopped())?
    }

    async fn ask(&self, request: Request) -> Result<(), StoreError> {
        self.queue.send(request).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    "delivery record batcher stopped".to_owned()
}

async fn run(pool: Pool, mut inbox: mpsc::Receiver<Request>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut running = tokio::task::JoinSet::new();
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, inbox.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        // Waiting for a slot lets the next batch grow meanwhile; what is already queued joins.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        running.spawn(async move {
            execute(&pool, batch).await;
            drop(slot);
        });
        // Reap finished batches so the set does not grow.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// Runs one batch and answers every request in it.
async fn execute(pool: &Pool, batch: Vec<Request>) {
    let mut lookups: HashMap<Arc<str>, Vec<Waiting>> = HashMap::new();
    let mut rows = Vec::new();
    let mut recorded = Vec::new();
    for request in batch {
        match request {
            Request::Lookup {
                flow,
                change_id,
                answer,
            } => lookups.entry(flow).or_default().push((change_id, answer)),
            Request::Record { row, answer } => {
                rows.push(row);
                recorded.push(answer);
            }
        }
    }
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let error = error.to_string();
            for (_, waiting) in lookups {
                for (_, answer) in waiting {
                    let _ = answer.send(Err(error.clone()));
                }
            }
            for answer in recorded {
                let _ = answer.send(Err(error.clone()));
            }
            return;
        }
    };
    // The look-ups and the insert go out together on the one connection (tokio-postgres
    // pipelines concurrent queries), so a batch costs one round trip plus the insert's commit.
    let insert = async {
        if rows.is_empty() {
            return Ok(());
        }
        insert(&client, &rows).await
    };
    let selects = futures::future::join_all(
        lookups
            .iter()
            .map(|(flow, waiting)| select(&client, flow, waiting)),
    );
    let (inserted, selected) = futures::join!(insert, selects);
    for ((_, waiting), found) in lookups.into_iter().zip(selected) {
        for (change_id, answer) in waiting {
            let _ = answer.send(
                found
                    .as_ref()
                    .map(|found| found.get(&change_id).copied())
                    .map_err(Clone::clone),
            );
        }
    }
    for answer in recorded {
        let _ = answer.send(inserted.clone());
    }
}

async fn select(
    client: &switchyard_chassis::deadpool_postgres::Client,
    flow: &str,
    waiting: &[Waiting],
) -> Result<HashMap<String, u16>, StoreError> {
    let ids: Vec<&str> = waiting.iter().map(|(id, _)| id.as_str()).collect();
    let statement = client
        .prepare_cached(
            "SELECT change_id, http_status FROM deliveries WHERE flow = $1 AND change_id = ANY($2)",
        )
        .await
        .map_err(|e| e.to_string())?;
    let rows = client
        .query(&statement, &[&flow, &ids])
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                u16::try_from(r.get::<_, i32>(1)).unwrap_or(0),
            )
        })
        .collect())
}

async fn insert(
    client: &switchyard_chassis::deadpool_postgres::Client,
    rows: &[Row],
) -> Result<(), StoreError> {
    let flows: Vec<&str> = rows.iter().map(|r| &*r.flow).collect();
    let change_ids: Vec<&str> = rows.iter().map(|r| r.change_id.as_str()).collect();
    let destinations: Vec<&str> = rows.iter().map(|r| r.destination.as_str()).collect();
    let statuses: Vec<i32> = rows.iter().map(|r| r.status).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    // A change recorded twice in one batch (a redelivery racing its original) is one row: the
    // first one stands, as with one insert each.
    let statement = client
        .prepare_cached(
            "INSERT INTO deliveries (flow, change_id, destination, http_status, attempts) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[]) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(|e| e.to_string())?;
    client
        .execute(
            &statement,
            &[&flows, &change_ids, &destinations, &statuses, &attempts],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
