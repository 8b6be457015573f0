//! Identity review: `switchyard admin conflicts`, `keep-apart`, `merge` and `unmerge`.

use clap::Args;
use switchyard_proto::v1::{
    IdentityCommandReply, KeepApartRequest, ListConflictsRequest, MergeGoldenRequest,
    UnmergeGoldenRequest,
};

use super::{Client, request};
use crate::demo::say;

/// Which conflicts `admin conflicts` lists.
#[derive(Debug, Args)]
pub struct ConflictsArgs {
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
}

/// The two golden records `admin merge` joins, and why.
#[derive(Debug, Args)]
pub struct MergeArgs {
    #[arg(long)]
    object: String,
    survivor: String,
    merged: String,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "")]
    reason: String,
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

/// `admin conflicts`: every page of them, newest first, up to `limit` (0: all).
pub(super) async fn conflicts(
    client: &mut Client,
    token: &str,
    args: ConflictsArgs,
) -> anyhow::Result<()> {
    let ConflictsArgs {
        object,
        kind,
        all,
        limit,
    } = args;
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
                token,
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
    Ok(())
}

/// `admin keep-apart ID`.
pub(super) async fn keep_apart(
    client: &mut Client,
    token: &str,
    id: u64,
    reason: String,
) -> anyhow::Result<()> {
    let conflict = client
        .keep_apart(request(KeepApartRequest { id, reason }, token)?)
        .await?
        .into_inner();
    say(&format!("kept apart: {}", conflict_line(&conflict)));
    Ok(())
}

/// `admin merge SURVIVOR MERGED`.
pub(super) async fn merge(client: &mut Client, token: &str, args: MergeArgs) -> anyhow::Result<()> {
    let MergeArgs {
        object,
        survivor,
        merged,
        reason,
    } = args;
    let reply = client
        .merge_golden(request(
            MergeGoldenRequest {
                object,
                survivor,
                merged,
                reason,
            },
            token,
        )?)
        .await?
        .into_inner();
    command_reply("merge", &reply)?;
    Ok(())
}

/// `admin unmerge COMMAND_ID`.
pub(super) async fn unmerge(
    client: &mut Client,
    token: &str,
    command_id: String,
    reason: String,
) -> anyhow::Result<()> {
    let reply = client
        .unmerge_golden(request(
            UnmergeGoldenRequest {
                command_id,
                reason,
                ..Default::default()
            },
            token,
        )?)
        .await?
        .into_inner();
    command_reply("unmerge", &reply)?;
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
