//! Deliver's status reports (`FlowStatus` on `<prefix>.ops.status.<key>`) kept as conditions —
//! a paused flow, a destination whose OAuth2 credentials fail or expire soon — from which the
//! alert evaluator raises `flow_paused` and `credentials` alerts and resolves them once deliver
//! reports the flow resumed or a refresh that worked.

use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use switchyard_proto::v1::{FlowStatus, FlowStatusKind};

use crate::rules::{self, Finding, Rule};
use crate::store::{self, StoreError, status::Condition};

/// The condition a report sets: its rule, subject, whether it holds, and the alert's summary.
fn condition(status: &FlowStatus) -> Option<(Rule, String, bool, String)> {
    let flow = status.flow.as_str();
    let destination = status.destination.as_str();
    let kind = FlowStatusKind::try_from(status.kind).ok()?;
    let paused = |active: bool, summary: String| {
        Some((Rule::FlowPaused, format!("flow={flow}"), active, summary))
    };
    let credentials = |active: bool, summary: String| {
        Some((
            Rule::Credentials,
            format!("destination={destination}"),
            active,
            summary,
        ))
    };
    match kind {
        FlowStatusKind::Paused => paused(
            true,
            format!(
                "flow {flow} is paused: destination {destination} answered 410 Gone; every change is dead-lettered until `switchyard admin flows resume {flow}`"
            ),
        ),
        FlowStatusKind::Resumed => paused(false, format!("flow {flow} resumed")),
        FlowStatusKind::CredentialsFailing => credentials(
            true,
            format!(
                "destination {destination}: OAuth2 token refresh failing ({}); re-authorise the connection",
                status.reason
            ),
        ),
        FlowStatusKind::CredentialsExpiring => credentials(
            true,
            format!(
                "destination {destination}: {}; re-authorise the connection before it expires",
                status.reason
            ),
        ),
        FlowStatusKind::CredentialsOk => {
            credentials(false, format!("destination {destination}: token refreshed"))
        }
        FlowStatusKind::Unspecified => None,
    }
}

/// Keeps a report's condition unless a newer report already set it. Reports of no known kind
/// are ignored (a newer deliver may report more).
pub(crate) async fn store(pool: &Pool, status: &FlowStatus) -> Result<(), StoreError> {
    let Some((rule, subject, active, summary)) = condition(status) else {
        tracing::warn!(kind = status.kind, "status report of no known kind ignored");
        return Ok(());
    };
    let at = status
        .at
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    let condition = Condition {
        rule: rule.as_str().to_owned(),
        subject,
        summary,
    };
    store::status::store(pool, &condition, active, at).await
}

/// The conditions that hold now, as findings for the alert evaluator.
pub(crate) async fn findings(tx: &Transaction<'_>) -> Result<Vec<Finding>, StoreError> {
    Ok(store::status::active(tx)
        .await?
        .into_iter()
        .filter_map(|c| {
            let rule = match c.rule.as_str() {
                "flow_paused" => Rule::FlowPaused,
                "credentials" => Rule::Credentials,
                _ => return None,
            };
            Some(rules::status(rule, &c.subject, c.summary))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: FlowStatusKind) -> FlowStatus {
        FlowStatus {
            flow: "contacts".to_owned(),
            destination: "crm".to_owned(),
            kind: kind.into(),
            reason: "refused: 400 invalid_grant".to_owned(),
            at: None,
            credentials_expire_at: None,
        }
    }

    #[test]
    fn reports_set_and_clear_one_condition_per_flow_or_destination() {
        let (rule, subject, active, summary) =
            condition(&report(FlowStatusKind::Paused)).expect("condition");
        assert_eq!(
            (rule, subject.as_str(), active),
            (Rule::FlowPaused, "flow=contacts", true)
        );
        assert!(summary.contains("flows resume contacts"), "{summary}");
        let resumed = condition(&report(FlowStatusKind::Resumed)).expect("condition");
        assert_eq!((resumed.0, resumed.1, resumed.2), (rule, subject, false));
        let failing = condition(&report(FlowStatusKind::CredentialsFailing)).expect("condition");
        assert_eq!(
            (failing.0, failing.1.as_str(), failing.2),
            (Rule::Credentials, "destination=crm", true)
        );
        assert!(failing.3.contains("invalid_grant"), "{}", failing.3);
        let ok = condition(&report(FlowStatusKind::CredentialsOk)).expect("condition");
        assert_eq!((ok.1, ok.2), (failing.1, false));
        assert!(condition(&report(FlowStatusKind::Unspecified)).is_none());
    }
}
