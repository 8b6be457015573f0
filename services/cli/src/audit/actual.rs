//! `switchyard audit --actual`: what the running flows measured (monitor's admin API) beside the
//! audit's estimates — deliveries so far, and the hours and money of manual entry they avoided.

use std::fmt::Write as _;

use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{GetFlowHealthRequest, ListFlowsRequest};

use super::analysis::Audit;
use super::emit::token;
use crate::admin::AdminArgs;

/// The running flows that came from an audit flow: the names `--emit-config` gives its legs.
fn leg_names(flow: &super::analysis::FlowAnalysis) -> Vec<String> {
    let mut ends = vec![(flow.from.as_str(), flow.to.as_str())];
    if flow.direction == super::model::Direction::TwoWay {
        ends.push((flow.to.as_str(), flow.from.as_str()));
    }
    ends.iter()
        .flat_map(|(from, to)| {
            flow.objects
                .iter()
                .map(move |o| token(&format!("{from}-to-{to}-{}", o.as_str())))
        })
        .collect()
}

/// Renders the measured figures; flows that are not running say so.
pub async fn render(audit: &Audit, admin: &AdminArgs) -> anyhow::Result<String> {
    let token_value = std::env::var(&admin.token_env)
        .map_err(|_| anyhow::anyhow!("environment variable {} is not set", admin.token_env))?;
    let mut client = AdminClient::connect(admin.admin.clone())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "monitor's admin API at {} is not reachable: {e}",
                admin.admin
            )
        })?;
    let running: Vec<String> = client
        .list_flows(crate::admin::request(ListFlowsRequest {}, &token_value)?)
        .await?
        .into_inner()
        .flows
        .into_iter()
        .map(|f| f.name)
        .collect();
    let rate = audit.settings.hourly_rate;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ACTUAL  (measured by monitor at {}; value = delivered × minutes ÷ 60 × ${rate}/h)",
        admin.admin
    );
    let _ = writeln!(
        out,
        "  {:<26} {:>14}   {:<32} {:>9} {:>10} {:>10}",
        "audit flow", "estimate/mo", "running flow", "delivered", "hours", "value"
    );
    for flow in &audit.flows {
        let estimate = format!(
            "{} h ${:.0}",
            flow.roi.hours_per_month, flow.roi.value_per_month
        );
        let mut any = false;
        for name in leg_names(flow).into_iter().filter(|n| running.contains(n)) {
            any = true;
            let health = client
                .get_flow_health(crate::admin::request(
                    GetFlowHealthRequest { flow: name.clone() },
                    &token_value,
                )?)
                .await?
                .into_inner();
            #[allow(clippy::cast_precision_loss)] // delivery counts far below 2^52
            let hours = health.delivered as f64 * flow.minutes_per_record / 60.0;
            let _ = writeln!(
                out,
                "  {:<26} {:>14}   {:<32} {:>9} {:>10.1} {:>10}",
                flow.name,
                estimate,
                name,
                health.delivered,
                hours,
                format!("${:.2}", hours * rate)
            );
        }
        if !any {
            let _ = writeln!(
                out,
                "  {:<26} {:>14}   {:<32}",
                flow.name, estimate, "(not running)"
            );
        }
    }
    Ok(out)
}
