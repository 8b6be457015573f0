//! `switchyard admin dlq list|show|replay`: dead letters, the filters that select them, and
//! replaying them into the flow they came from.

use clap::{Args, Subcommand};
use switchyard_proto::v1::{
    DeadLetterSummary, GetDeadLetterRequest, ListDeadLettersRequest, ReplayDeadLetterRequest,
    ReplayDeadLettersRequest,
};

use super::{Client, dash, request};
use crate::demo::say;

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

/// Runs `admin dlq …`.
pub(super) async fn run(
    client: &mut Client,
    token: &str,
    command: DlqCommand,
) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { filter } => list(client, token, filter).await,
        DlqCommand::Show { sequence } => show(client, token, sequence).await,
        DlqCommand::Replay {
            sequence: Some(sequence),
            filter,
            yes: _,
        } => replay_one(client, token, sequence, filter).await,
        DlqCommand::Replay {
            sequence: None,
            filter,
            yes,
        } => replay_matching(client, token, filter, yes).await,
    }
}

async fn list(client: &mut Client, token: &str, filter: DlqFilter) -> anyhow::Result<()> {
    let letters = list_dead_letters(client, token, &filter).await?;
    for l in &letters {
        say(&letter_line(l));
    }
    say(&format!("{} dead letter(s)", letters.len()));
    Ok(())
}

async fn show(client: &mut Client, token: &str, sequence: u64) -> anyhow::Result<()> {
    let detail = client
        .get_dead_letter(request(GetDeadLetterRequest { sequence }, token)?)
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
    Ok(())
}

async fn replay_one(
    client: &mut Client,
    token: &str,
    sequence: u64,
    filter: DlqFilter,
) -> anyhow::Result<()> {
    if !is_empty(&filter) {
        anyhow::bail!("give a sequence or filters, not both");
    }
    let replayed = client
        .replay_dead_letter(request(ReplayDeadLetterRequest { sequence }, token)?)
        .await?
        .into_inner();
    say(&format!("replayed #{sequence} to {}", replayed.subject));
    Ok(())
}

async fn replay_matching(
    client: &mut Client,
    token: &str,
    mut filter: DlqFilter,
    yes: bool,
) -> anyhow::Result<()> {
    if filter.flow.trim().is_empty() {
        anyhow::bail!("name the flow to replay into (--flow), or give one sequence");
    }
    // `--flow` names a flow: its deliver-stage letters, unless another stage is asked for.
    if filter.stage.trim().is_empty() {
        "deliver".clone_into(&mut filter.stage);
    }
    if !yes {
        let matching = list_dead_letters(client, token, &filter).await?;
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
            token,
        )?)
        .await?
        .into_inner();
    say(&format!(
        "replayed {} dead letter(s) into {} {} ({} matched, {} already replayed moments ago)",
        done.replayed, filter.stage, filter.flow, done.matched, done.already_replayed
    ));
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

/// A time as RFC 3339 in UTC (as the alerts' own texts show times), `-` when there is none.
pub(super) fn rfc3339(t: Option<switchyard_proto::Timestamp>) -> String {
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
    client: &mut Client,
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
