//! Paused flows, kept in `flow_pauses` so a pause survives restarts and holds on every replica,
//! and the operator commands (`<prefix>.ops.command.deliver`) that resume them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use prost::Message as _;
use switchyard_chassis::bus::{Delivery, Failure, Handler, Outcome};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{FlowCommand, FlowCommandKind};

use crate::flow::Flow;
use crate::status::Reporter;

/// Every paused flow and since when.
pub(crate) async fn load(pool: &Pool) -> Result<HashMap<String, SystemTime>, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let rows = client
        .query("SELECT flow, paused_at FROM flow_pauses", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Pauses `flow`; answers when it was paused if this call paused it (None: it already was).
pub(crate) async fn store(
    pool: &Pool,
    flow: &str,
    reason: &str,
) -> Result<Option<SystemTime>, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_opt(
            "INSERT INTO flow_pauses (flow, reason) VALUES ($1, $2) \
             ON CONFLICT (flow) DO NOTHING RETURNING paused_at",
            &[&flow, &reason],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.map(|r| r.get(0)))
}

/// Whether `flow` is paused.
pub(crate) async fn holds(pool: &Pool, flow: &str) -> Result<bool, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_opt("SELECT 1 FROM flow_pauses WHERE flow = $1", &[&flow])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.is_some())
}

/// Clears `flow`'s pause unless it began after `issued_at` (a resume meant for an earlier pause
/// must not lift a newer one). Answers whether the flow is still paused.
async fn clear(pool: &Pool, flow: &str, issued_at: SystemTime) -> Result<bool, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            "DELETE FROM flow_pauses WHERE flow = $1 AND paused_at <= $2",
            &[&flow, &issued_at],
        )
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    holds(pool, flow).await
}

/// Carries out operators' flow commands.
#[derive(Debug)]
pub(crate) struct Commands {
    pub flows: Arc<HashMap<String, Arc<Flow>>>,
    pub pool: Pool,
    pub reporter: Reporter,
}

impl Handler for Commands {
    /// Handles one command; idempotent, so a redelivered command does no harm.
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let command = match FlowCommand::decode(delivery.payload()) {
            Ok(command) => command,
            Err(error) => {
                // Only monitor's admin API publishes here; nothing to retry or replay.
                tracing::warn!(%error, "undecodable flow command dropped");
                return Outcome::Ack;
            }
        };
        let Some(flow) = self.flows.get(&command.flow) else {
            tracing::warn!(flow = %command.flow, "command for a flow this deliver does not run; ignored");
            return Outcome::Ack;
        };
        if command.kind != i32::from(FlowCommandKind::Resume) {
            tracing::warn!(kind = command.kind, "unknown flow command ignored");
            return Outcome::Ack;
        }
        let issued_at = command
            .issued_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now);
        match clear(&self.pool, &command.flow, issued_at).await {
            Ok(false) => {
                flow.paused.store(false, Ordering::Relaxed);
                tracing::info!(flow = %command.flow, command = %command.command_id, "flow resumed");
                self.reporter
                    .resumed(&command.flow, flow.destination.name(), issued_at);
                Outcome::Ack
            }
            Ok(true) => {
                tracing::info!(flow = %command.flow, "resume older than the flow's pause; ignored");
                Outcome::Ack
            }
            // Dead-lettered under the flow once the attempts run out: a replay sends the command
            // again.
            Err(error) => Outcome::retry(Failure::transient(
                command.flow,
                format!("flow command not carried out: {error}"),
            )),
        }
    }
}
