//! `switchyard contracts check` (local: the contract and mapping files) and the admin commands
//! over monitor's gRPC API: `flows`, `health`, `dlq list|replay`, `conflicts`, `merge`,
//! `unmerge`, `alerts`, `audit-log`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    GetFlowHealthRequest, IdentityCommandReply, ListAlertsRequest, ListAuditRequest,
    ListConflictsRequest, ListDeadLettersRequest, ListFlowsRequest, MergeGoldenRequest,
    ReplayDeadLetterRequest, UnmergeGoldenRequest,
};

use crate::demo::say;

/// `switchyard contracts …`
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Validate every contract file, run its samples, and load every mapping against them.
    Check {
        /// Your own contracts (beside the built-in ones).
        #[arg(long)]
        contracts: Option<PathBuf>,
        /// Your own mappings (beside the built-in ones).
        #[arg(long)]
        mappings: Option<PathBuf>,
    },
}

pub fn contracts(command: ContractsCommand) -> anyhow::Result<()> {
    let ContractsCommand::Check {
        contracts,
        mappings,
    } = command;
    let loaded = switchyard_proto::contracts::load(contracts.as_deref())?;
    let mut failures = Vec::new();
    for contract in &loaded {
        let problems = contract.check_samples();
        say(&format!(
            "{} {:<12} {} samples{}",
            if problems.is_empty() { "ok  " } else { "FAIL" },
            contract.id(),
            contract.samples.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!(": {}", problems.join("; "))
            }
        ));
        failures.extend(problems);
    }
    let registry = switchyard_transform::mapping::Registry::load(mappings.as_deref(), &loaded)?;
    for mapping in registry.all() {
        say(&format!(
            "ok   mapping {} ({} → {})",
            mapping.name, mapping.source_kind, mapping.contract
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} contract sample(s) failed", failures.len())
    }
}

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

/// `switchyard dlq …`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, optionally of one stage and flow or source.
    List {
        #[arg(long, default_value = "")]
        stage: String,
        #[arg(long, default_value = "")]
        key: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Put one dead letter back on its original subject (operator token).
    Replay { sequence: u64 },
}

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The configured flows.
    Flows,
    /// One flow's counts and freshness.
    Health { flow: String },
    /// Dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Identity conflicts dedupe recorded (open ones unless --all).
    Conflicts {
        /// Only this object (contact, company, ...).
        #[arg(long, default_value = "")]
        object: String,
        /// Resolved conflicts too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Merge the golden record MERGED into SURVIVOR (operator token; audited).
    Merge {
        #[arg(long)]
        object: String,
        survivor: String,
        merged: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
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
    match command {
        AdminCommand::Flows => {
            for flow in client
                .list_flows(request(ListFlowsRequest {}, &token)?)
                .await?
                .into_inner()
                .flows
            {
                say(&format!(
                    "{:<24} {:<10} → {}",
                    flow.name, flow.object, flow.destination
                ));
            }
        }
        AdminCommand::Health { flow } => {
            let h = client
                .get_flow_health(request(GetFlowHealthRequest { flow }, &token)?)
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
        }
        AdminCommand::Dlq(DlqCommand::List { stage, key, limit }) => {
            let letters = client
                .list_dead_letters(request(
                    ListDeadLettersRequest { stage, key, limit },
                    &token,
                )?)
                .await?
                .into_inner()
                .dead_letters;
            for l in letters {
                say(&format!(
                    "#{:<6} {:<9} {:<20} attempts {:<3} status {:<3} {}",
                    l.sequence, l.stage, l.key, l.attempts, l.http_status, l.reason
                ));
            }
        }
        AdminCommand::Dlq(DlqCommand::Replay { sequence }) => {
            let replayed = client
                .replay_dead_letter(request(ReplayDeadLetterRequest { sequence }, &token)?)
                .await?
                .into_inner();
            say(&format!("replayed #{sequence} to {}", replayed.subject));
        }
        AdminCommand::Conflicts { object, all, limit } => {
            let conflicts = client
                .list_conflicts(request(
                    ListConflictsRequest {
                        object,
                        open_only: !all,
                        limit,
                    },
                    &token,
                )?)
                .await?
                .into_inner()
                .conflicts;
            for c in conflicts {
                let state = if c.resolved_by.is_empty() && c.resolved_at.is_none() {
                    "open".to_owned()
                } else {
                    format!("resolved by {}", c.resolved_by)
                };
                say(&format!(
                    "{:<8} a={} b={} event={} {} ({})",
                    c.object, c.golden_a, c.golden_b, c.event_id, c.detail, state
                ));
            }
        }
        AdminCommand::Merge {
            object,
            survivor,
            merged,
            reason,
        } => {
            let reply = client
                .merge_golden(request(
                    MergeGoldenRequest {
                        object,
                        survivor,
                        merged,
                        reason,
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            command_reply("merge", &reply)?;
        }
        AdminCommand::Unmerge { command_id, reason } => {
            let reply = client
                .unmerge_golden(request(
                    UnmergeGoldenRequest {
                        command_id,
                        reason,
                        ..Default::default()
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            command_reply("unmerge", &reply)?;
        }
        AdminCommand::Alerts { all, limit } => {
            let alerts = client
                .list_alerts(request(
                    ListAlertsRequest {
                        open_only: !all,
                        limit,
                    },
                    &token,
                )?)
                .await?
                .into_inner()
                .alerts;
            // RFC 3339 in UTC, as the alerts' own texts show times.
            let at = |t: Option<switchyard_proto::Timestamp>| {
                t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "-".to_owned())
            };
            for a in alerts {
                let state = match a.resolved_at {
                    None => "open".to_owned(),
                    Some(t) => format!("resolved {}", at(Some(t))),
                };
                say(&format!(
                    "{:<8} {:<40} opened {} {state}\n         {}\n         runbook: {}",
                    a.severity,
                    a.id,
                    at(a.opened_at),
                    a.summary,
                    a.runbook
                ));
            }
        }
        AdminCommand::AuditLog { limit } => {
            for e in client
                .list_audit(request(ListAuditRequest { limit }, &token)?)
                .await?
                .into_inner()
                .entries
            {
                say(&format!(
                    "{:>12} {:<9} {:<12} {} {}",
                    e.at.map_or(0, |t| t.seconds),
                    e.role,
                    e.action,
                    e.target,
                    e.detail
                ));
            }
        }
    }
    Ok(())
}

/// Prints what dedupe did with a merge or un-merge; a refusal is an error (non-zero exit).
fn command_reply(what: &str, reply: &IdentityCommandReply) -> anyhow::Result<()> {
    let Some(result) = &reply.result else {
        say(&format!(
            "{what} {} is pending: dedupe has not answered yet; it is applied when dedupe gets to it",
            reply.command_id
        ));
        return Ok(());
    };
    if !result.applied {
        anyhow::bail!("{what} {} refused: {}", reply.command_id, result.error);
    }
    let fields = if result.filled_fields.is_empty() {
        "none".to_owned()
    } else {
        result.filled_fields.join(", ")
    };
    if what == "merge" {
        say(&format!(
            "merged {} {} into {}: {} source ids moved, fields filled: {fields}",
            result.object,
            result.merged,
            result.survivor,
            result.moved_refs.len()
        ));
    } else {
        say(&format!(
            "un-merged {} {} from {} (merge {}): {} source ids moved back, fields cleared: {fields}",
            result.object,
            result.merged,
            result.survivor,
            result.merge_command_id,
            result.moved_refs.len()
        ));
    }
    if what == "merge" {
        say(&format!(
            "undo with: switchyard admin unmerge {}",
            result.merge_command_id
        ));
    }
    Ok(())
}
