//! `switchyard contracts check` (local: the contract and mapping files) and the admin commands
//! over monitor's gRPC API: `flows`, `health`, `dlq list|show|replay`, `contracts`, `conflicts`,
//! `merge`, `unmerge`, `alerts`, `audit-log`.

mod alerts;
mod audit_log;
mod contracts;
mod dlq;
mod flows;
mod identity;

use clap::{Args, Subcommand};
use switchyard_proto::v1::admin_client::AdminClient;

pub use contracts::{ContractsCommand, contracts};
use dlq::DlqCommand;
use flows::FlowsCommand;

/// The admin API's client, as every subcommand uses it.
type Client = AdminClient<tonic::transport::Channel>;

/// Where the admin API is and who is asking.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Monitor's admin gRPC API.
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN_URL",
        default_value = "http://127.0.0.1:9190"
    )]
    pub admin: String,
    /// Environment variable holding the bearer token (read-only or operator).
    #[arg(long, default_value = "SWITCHYARD_ADMIN_TOKEN")]
    pub token_env: String,
}

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The configured flows (paused ones marked); `flows resume FLOW` resumes a paused flow.
    Flows {
        #[command(subcommand)]
        action: Option<FlowsCommand>,
    },
    /// One flow's counts and freshness.
    Health { flow: String },
    /// Dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The data contracts in force: object, version, owner, system of record, fields.
    Contracts,
    /// Identity conflicts and near-duplicates dedupe raised for review (open ones unless --all),
    /// every page of them, newest first.
    Conflicts(identity::ConflictsArgs),
    /// Close conflict ID as two different people, without merging (operator token; audited).
    KeepApart {
        id: u64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Merge the golden record MERGED into SURVIVOR (operator token; audited).
    Merge(identity::MergeArgs),
    /// Undo the merge with this command id (operator token; audited).
    Unmerge {
        command_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Alerts monitor raised, newest first (open ones unless --all).
    Alerts {
        /// Resolved alerts too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The most recent operator actions.
    AuditLog {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub(crate) fn request<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

pub async fn admin(args: AdminArgs, command: AdminCommand) -> anyhow::Result<()> {
    let token = std::env::var(&args.token_env)
        .map_err(|_| anyhow::anyhow!("environment variable {} is not set", args.token_env))?;
    let mut client = AdminClient::connect(args.admin.clone()).await?;
    let client = &mut client;
    match command {
        AdminCommand::Flows { action } => flows::run(client, &token, action).await,
        AdminCommand::Health { flow } => flows::health(client, &token, flow).await,
        AdminCommand::Dlq(command) => dlq::run(client, &token, command).await,
        AdminCommand::Contracts => contracts::list(client, &token).await,
        AdminCommand::Conflicts(args) => identity::conflicts(client, &token, args).await,
        AdminCommand::KeepApart { id, reason } => {
            identity::keep_apart(client, &token, id, reason).await
        }
        AdminCommand::Merge(args) => identity::merge(client, &token, args).await,
        AdminCommand::Unmerge { command_id, reason } => {
            identity::unmerge(client, &token, command_id, reason).await
        }
        AdminCommand::Alerts { all, limit } => alerts::alerts(client, &token, all, limit).await,
        AdminCommand::AuditLog { limit } => audit_log::audit_log(client, &token, limit).await,
    }
}

fn dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}
