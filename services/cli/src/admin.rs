//! `switchyard contracts check` (local: the contract and mapping files) and the admin commands
//! over monitor's gRPC API: `flows`, `health`, `dlq list|show|replay`, `contracts`, `conflicts`,
//! `merge`, `unmerge`, `alerts`, `audit-log`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    DeadLetterSummary, GetDeadLetterRequest, GetFlowHealthRequest, IdentityCommandReply,
    KeepApartRequest, ListAlertsRequest, ListAuditRequest, ListConflictsRequest,
    ListContractsRequest, ListDeadLettersRequest, ListFlowsRequest, MergeGoldenRequest,
    ReplayDeadLetterRequest, ReplayDeadLettersRequest, UnmergeGoldenRequest,
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

/// Which dead letters: every filter given must match.
#[derive(Debug, Default, Args)]
pub struct DlqFilter {
    /// deliver, transform, dedupe or monitor.
    #[arg(long, default_value = "")]
    pub stage: String,
    /// The flow (deliver) or source (transform, dedupe).
    #[arg(long, alias = "key", default_value = "")]
    pub flow: String,
    /// The flow's destination.
    #[arg(long, default_value = "")]
    pub destination: String,
    /// server_error, rate_limited, timeout, connection, client_error, auth, gone, max_age,
    /// exhausted, contract_violation, undecodable, mapping, invalid or internal.
    #[arg(long, default_value = "")]
    pub error_class: String,
    /// Failed at or after: RFC 3339 (`2026-11-27T09:00:00Z`) or an age (`2h`, `30m`, `1d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Failed before: RFC 3339 or an age.
    #[arg(long)]
    pub until: Option<String>,
}

/// `switchyard dlq …`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List every dead letter matching the filters (all of them, page after page).
    List {
        #[command(flatten)]
        filter: DlqFilter,
    },
    /// One dead letter: everything it carries, its original message as JSON.
    Show { sequence: u64 },
    /// Replay one dead letter (by sequence), or every one matching the filters (`--flow` is then
    /// required), each into the flow it came from only (operator token; audited).
    Replay {
        sequence: Option<u64>,
        #[command(flatten)]
        filter: DlqFilter,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

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
    Conflicts {
        /// Only this object (contact, company, ...).
        #[arg(long, default_value = "")]
        object: String,
        /// Only this kind: keys_disagree, phone_shared or near_duplicate.
        #[arg(long, default_value = "")]
        kind: String,
        /// Resolved conflicts too.
        #[arg(long)]
        all: bool,
        /// At most this many in all (0: every one).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Close conflict ID as two different people, without merging (operator token; audited).
    KeepApart {
        id: u64,
        #[arg(long, default_value = "")]
        reason: String,
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

/// One conflict on one line: id, kind, object, the two records, why, and its state.
fn conflict_line(c: &switchyard_proto::v1::Conflict) -> String {
    let state = if c.resolved_by.is_empty() && c.resolved_at.is_none() {
        "open".to_owned()
    } else {
        format!("resolved: {}", c.resolved_by)
    };
    let why = if c.evidence.is_empty() {
        c.detail.clone()
    } else {
        c.evidence.join("; ")
    };
    format!(
        "{:>6} {:<14} {:<8} a={} b={} event={} {why} ({state})",
        c.id, c.kind, c.object, c.golden_a, c.golden_b, c.event_id
    )
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
        AdminCommand::Flows {
            action: Some(FlowsCommand::Resume { flow, reason }),
        } => {
            let resumed = client
                .resume_flow(request(
                    switchyard_proto::v1::ResumeFlowRequest { flow, reason },
                    &token,
                )?)
                .await?
                .into_inner();
            say(&format!(
                "resume of {} sent to deliver (command {})",
                resumed.flow, resumed.command_id
            ));
        }
        AdminCommand::Flows { action: None } => {
            for flow in client
                .list_flows(request(ListFlowsRequest {}, &token)?)
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
        AdminCommand::Dlq(DlqCommand::List { filter }) => {
            let letters = list_dead_letters(&mut client, &token, &filter).await?;
            for l in &letters {
                say(&letter_line(l));
            }
            say(&format!("{} dead letter(s)", letters.len()));
        }
        AdminCommand::Dlq(DlqCommand::Show { sequence }) => {
            let detail = client
                .get_dead_letter(request(GetDeadLetterRequest { sequence }, &token)?)
                .await?
                .into_inner();
            let l = detail.summary.unwrap_or_default();
            say(&format!(
                "sequence     {}\nstage        {}\nflow/source  {}\ndestination  {}\n\
                 error class  {}\nhttp status  {}\nattempts     {}\nfailed at    {}\n\
                 subject      {}\nreason       {}",
                l.sequence,
                l.stage,
                l.key,
                dash(&l.destination),
                dash(&l.error_class),
                l.http_status,
                l.attempts,
                rfc3339(l.failed_at),
                l.original_subject,
                l.reason
            ));
            say(&format!("response     {}", dash(&detail.response_body)));
            let mut headers: Vec<_> = detail.original_headers.iter().collect();
            headers.sort();
            for (name, value) in headers {
                say(&format!("header       {name}: {value}"));
            }
            if detail.payload_json.is_empty() && !detail.payload_type.is_empty() {
                say(&format!(
                    "payload      {} ({} bytes; shown to operator tokens only)",
                    detail.payload_type, detail.payload_size
                ));
            } else if detail.payload_json.is_empty() {
                say(&format!(
                    "payload      {} bytes (not a message Switchyard knows)",
                    detail.payload_size
                ));
            } else {
                say(&format!(
                    "payload      {} ({} bytes)\n{}",
                    detail.payload_type, detail.payload_size, detail.payload_json
                ));
            }
        }
        AdminCommand::Dlq(DlqCommand::Replay {
            sequence: Some(sequence),
            filter,
            yes: _,
        }) => {
            if !is_empty(&filter) {
                anyhow::bail!("give a sequence or filters, not both");
            }
            let replayed = client
                .replay_dead_letter(request(ReplayDeadLetterRequest { sequence }, &token)?)
                .await?
                .into_inner();
            say(&format!("replayed #{sequence} to {}", replayed.subject));
        }
        AdminCommand::Dlq(DlqCommand::Replay {
            sequence: None,
            mut filter,
            yes,
        }) => {
            if filter.flow.trim().is_empty() {
                anyhow::bail!("name the flow to replay into (--flow), or give one sequence");
            }
            // `--flow` names a flow: its deliver-stage letters, unless another stage is asked for.
            if filter.stage.trim().is_empty() {
                "deliver".clone_into(&mut filter.stage);
            }
            if !yes {
                let matching = list_dead_letters(&mut client, &token, &filter).await?;
                if !confirm(&format!(
                    "replay {} dead letter(s) into {} {}? [y/N] ",
                    matching.len(),
                    filter.stage,
                    filter.flow
                ))? {
                    say("nothing replayed");
                    return Ok(());
                }
            }
            let (since, until) = times(&filter)?;
            let done = client
                .replay_dead_letters(request(
                    ReplayDeadLettersRequest {
                        stage: filter.stage.clone(),
                        key: filter.flow.clone(),
                        destination: filter.destination.clone(),
                        error_class: filter.error_class.clone(),
                        since,
                        until,
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            say(&format!(
                "replayed {} dead letter(s) into {} {} ({} matched, {} already replayed moments ago)",
                done.replayed, filter.stage, filter.flow, done.matched, done.already_replayed
            ));
        }
        AdminCommand::Contracts => {
            let contracts = client
                .list_contracts(request(ListContractsRequest {}, &token)?)
                .await?
                .into_inner()
                .contracts;
            say(&format!(
                "{:<12} {:<8} {:<16} {:<20} fields",
                "object", "version", "owner", "system of record"
            ));
            for c in contracts {
                say(&format!(
                    "{:<12} {:<8} {:<16} {:<20} {}",
                    c.object,
                    format!("v{}", c.version),
                    dash(&c.owner),
                    dash(&c.system_of_record),
                    c.field_count
                ));
            }
        }
        AdminCommand::Conflicts {
            object,
            kind,
            all,
            limit,
        } => {
            let mut before_id = 0;
            let mut shown = 0;
            loop {
                let page = client
                    .list_conflicts(request(
                        ListConflictsRequest {
                            object: object.clone(),
                            kind: kind.clone(),
                            open_only: !all,
                            limit: 1000,
                            before_id,
                        },
                        &token,
                    )?)
                    .await?
                    .into_inner();
                for c in page.conflicts {
                    if limit != 0 && shown >= limit {
                        break;
                    }
                    shown += 1;
                    say(&conflict_line(&c));
                }
                before_id = page.next_before_id;
                if before_id == 0 || (limit != 0 && shown >= limit) {
                    break;
                }
            }
            say(&format!("{shown} shown"));
        }
        AdminCommand::KeepApart { id, reason } => {
            let conflict = client
                .keep_apart(request(KeepApartRequest { id, reason }, &token)?)
                .await?
                .into_inner();
            say(&format!("kept apart: {}", conflict_line(&conflict)));
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

fn is_empty(filter: &DlqFilter) -> bool {
    filter.stage.is_empty()
        && filter.flow.is_empty()
        && filter.destination.is_empty()
        && filter.error_class.is_empty()
        && filter.since.is_none()
        && filter.until.is_none()
}

fn dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// RFC 3339 in UTC, as the alerts' own texts show times.
fn rfc3339(t: Option<switchyard_proto::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

fn letter_line(l: &DeadLetterSummary) -> String {
    format!(
        "#{:<6} {:<9} {:<20} {:<16} {:<18} status {:<3} attempts {:<3} {} {}",
        l.sequence,
        l.stage,
        l.key,
        dash(&l.destination),
        dash(&l.error_class),
        l.http_status,
        l.attempts,
        rfc3339(l.failed_at),
        l.reason
    )
}

/// A time given as RFC 3339, or as an age before now (`2h`, `30m`, `1d 12h`).
pub(crate) fn parse_time(
    text: &str,
    now: std::time::SystemTime,
) -> anyhow::Result<switchyard_proto::Timestamp> {
    let text = text.trim();
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(switchyard_proto::timestamp(at.into()));
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        anyhow::anyhow!("{text:?} is neither an RFC 3339 time nor an age like 2h or 30m")
    })?;
    let at = now
        .checked_sub(age)
        .ok_or_else(|| anyhow::anyhow!("{text:?} reaches back before 1970"))?;
    Ok(switchyard_proto::timestamp(at))
}

type Times = (
    Option<switchyard_proto::Timestamp>,
    Option<switchyard_proto::Timestamp>,
);

fn times(filter: &DlqFilter) -> anyhow::Result<Times> {
    let now = std::time::SystemTime::now();
    let since = filter
        .since
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let until = filter
        .until
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    Ok((since, until))
}

/// Every dead letter matching `filter`: the admin API answers a page at a time, and this asks
/// for the next one until there is none (nothing is cut off).
async fn list_dead_letters(
    client: &mut AdminClient<tonic::transport::Channel>,
    token: &str,
    filter: &DlqFilter,
) -> anyhow::Result<Vec<DeadLetterSummary>> {
    let (since, until) = times(filter)?;
    let mut all = Vec::new();
    let mut after_sequence = 0;
    loop {
        let page = client
            .list_dead_letters(request(
                ListDeadLettersRequest {
                    stage: filter.stage.clone(),
                    key: filter.flow.clone(),
                    limit: 500,
                    destination: filter.destination.clone(),
                    error_class: filter.error_class.clone(),
                    since,
                    until,
                    after_sequence,
                },
                token,
            )?)
            .await?
            .into_inner();
        all.extend(page.dead_letters);
        match page.next_after_sequence {
            0 => return Ok(all),
            next => after_sequence = next,
        }
    }
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    out.write_all(question.as_bytes())?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::parse_time;

    #[test]
    fn times_are_rfc3339_or_an_age_before_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_time("2h", now).expect("age").seconds,
            1_000_000 - 7200
        );
        assert_eq!(
            parse_time("1d 30m", now).expect("age").seconds,
            1_000_000 - 86_400 - 1800
        );
        assert_eq!(
            parse_time("2026-11-27T09:00:00Z", now)
                .expect("RFC 3339")
                .seconds,
            1_795_770_000
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
