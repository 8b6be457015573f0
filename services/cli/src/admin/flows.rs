//! `switchyard admin flows` (the list, `flows resume FLOW`) and `switchyard admin health FLOW`.

use clap::Subcommand;
use switchyard_proto::v1::{GetFlowHealthRequest, ListFlowsRequest};

use super::{Client, request};
use crate::demo::say;

/// `switchyard admin flows …`
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Resume a flow deliver paused after its destination answered 410 (operator token; audited).
    Resume {
        flow: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Runs `admin flows`: the list, or the action given.
pub(super) async fn run(
    client: &mut Client,
    token: &str,
    action: Option<FlowsCommand>,
) -> anyhow::Result<()> {
    match action {
        Some(FlowsCommand::Resume { flow, reason }) => resume(client, token, flow, reason).await,
        None => list(client, token).await,
    }
}

async fn resume(
    client: &mut Client,
    token: &str,
    flow: String,
    reason: String,
) -> anyhow::Result<()> {
    let resumed = client
        .resume_flow(request(
            switchyard_proto::v1::ResumeFlowRequest { flow, reason },
            token,
        )?)
        .await?
        .into_inner();
    say(&format!(
        "resume of {} sent to deliver (command {})",
        resumed.flow, resumed.command_id
    ));
    Ok(())
}

async fn list(client: &mut Client, token: &str) -> anyhow::Result<()> {
    for flow in client
        .list_flows(request(ListFlowsRequest {}, token)?)
        .await?
        .into_inner()
        .flows
    {
        say(&format!(
            "{:<24} {:<10} → {}{}",
            flow.name,
            flow.object,
            flow.destination,
            if flow.paused { "  (paused)" } else { "" }
        ));
    }
    Ok(())
}

/// `admin health FLOW`: one flow's counts and freshness.
pub(super) async fn health(client: &mut Client, token: &str, flow: String) -> anyhow::Result<()> {
    let h = client
        .get_flow_health(request(GetFlowHealthRequest { flow }, token)?)
        .await?
        .into_inner();
    say(&format!(
        "{}: received {} delivered {} failed {} dead-lettered {} last delivered {}",
        h.flow,
        h.received,
        h.delivered,
        h.failed,
        h.dead_lettered,
        h.last_delivered_at.map_or_else(
            || "never".to_owned(),
            |t| format!("{}s after the epoch", t.seconds)
        )
    ));
    Ok(())
}
