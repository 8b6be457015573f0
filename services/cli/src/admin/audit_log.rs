//! `switchyard admin audit-log`: the most recent operator actions.

use switchyard_proto::v1::ListAuditRequest;

use super::{Client, request};
use crate::demo::say;

/// `admin audit-log`: the last `limit` entries.
pub(super) async fn audit_log(client: &mut Client, token: &str, limit: u32) -> anyhow::Result<()> {
    for e in client
        .list_audit(request(ListAuditRequest { limit }, token)?)
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
    Ok(())
}
