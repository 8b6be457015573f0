//! `switchyard admin alerts`: the alerts monitor raised, newest first.

use switchyard_proto::v1::ListAlertsRequest;

use super::{Client, request};
use crate::demo::say;

/// `admin alerts`: open ones unless `all`.
pub(super) async fn alerts(
    client: &mut Client,
    token: &str,
    all: bool,
    limit: u32,
) -> anyhow::Result<()> {
    let alerts = client
        .list_alerts(request(
            ListAlertsRequest {
                open_only: !all,
                limit,
            },
            token,
        )?)
        .await?
        .into_inner()
        .alerts;
    // RFC 3339 in UTC, as the alerts' own texts show times.
    let at = super::dlq::rfc3339;
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
    Ok(())
}
