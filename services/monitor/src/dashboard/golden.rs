//! What monitor knows of a golden record: the lookup form, and the record's page — dedupe's
//! lineage of it (read through dedupe's `golden_lineage` function), its identity conflicts and the
//! merge commands that named it, never its fields.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use switchyard_chassis::deadpool_postgres::Pool;

use super::{Dashboard, error_page, page, utc};
use crate::store::{self, lineage::Lineage};

/// Which source records and events built golden record `id`; empty when it is not a golden id
/// dedupe knows.
async fn lineage(pool: &Pool, id: &str) -> Result<Vec<Lineage>, String> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(Vec::new());
    }
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let function = store::lineage::lineage_function(&client)
        .await
        .map_err(|e| e.cause())?;
    let mut lineage = store::lineage::golden_lineage(&client, function, id)
        .await
        .map_err(|e| format!("lineage: {}", e.cause()))?;
    // The record first, then its sources by system, then events newest first.
    lineage.sort_by(|a, b| {
        let rank = |l: &Lineage| match l.kind.as_str() {
            "record" => 0,
            "source" => 1,
            _ => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| match a.kind.as_str() {
            "event" => b.last_seen.cmp(&a.last_seen),
            _ => (&a.system, &a.source_id).cmp(&(&b.system, &b.source_id)),
        })
    });
    Ok(lineage)
}

fn seen(at: Option<SystemTime>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |t| utc(Some(&switchyard_proto::timestamp(t))),
    )
}

/// The golden-record lookup: a form for object and id, which leads to the record's page.
pub(super) async fn golden_lookup(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let role = session!(dash, headers);
    let asked: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let field = |k: &str| asked.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let (Some(object), Some(id)) = (field("object"), field("id")) {
        let path: String = form_urlencoded::byte_serialize(object.as_bytes())
            .chain(["/"])
            .chain(form_urlencoded::byte_serialize(id.as_bytes()))
            .collect();
        return Redirect::to(&format!("/golden/{path}")).into_response();
    }
    page(
        "Golden record",
        Some(role),
        html! {
            form method="get" action="/golden" {
                label { "Object " input name="object" value="contact"; }
                " " label { "Golden id " input name="id" size="40"; }
                " " button type="submit" { "Look up" }
            }
        },
    )
    .into_response()
}

/// What is known of one golden record: the source records and events that built it (dedupe's
/// lineage), its identity conflicts and the merge commands that named it. Never its fields.
pub(super) async fn golden_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    let role = session!(dash, headers);
    let found = async {
        let client = dash.pool.get().await.map_err(|e| e.to_string())?;
        let conflicts = store::conflicts::of_golden(&client, &object, &id)
            .await
            .map_err(|e| e.cause())?;
        let commands = store::conflicts::commands_naming(&client, &object, &id)
            .await
            .map_err(|e| e.cause())?;
        // Lineage that cannot be read (a database set up without dedupe's lineage function)
        // leaves the rest of the page.
        let lineage = lineage(&dash.pool, &id).await;
        Ok::<_, String>((conflicts, commands, lineage))
    }
    .await;
    let (conflicts, commands, lineage) = match found {
        Ok(found) => found,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e),
    };
    page(
        &format!("Golden {object} {id}"),
        Some(role),
        html! {
            p { "Where the record came from, as dedupe keeps it; its fields are not shown here." }
            h2 { "Lineage" }
            @if let Err(e) = &lineage {
                p id="lineage-error" { "The lineage cannot be read: " (e) " (see docs/deploy.md, Least privilege on PostgreSQL)." }
            }
            @let lineage: &[Lineage] = lineage.as_deref().unwrap_or_default();
            @let record = lineage.iter().find(|l| l.kind == "record");
            @if let Some(r) = record {
                p id="record" { (r.object) " version " (r.version.unwrap_or_default())
                    ", created " (seen(r.first_seen)) ", last changed " (seen(r.last_seen)) }
            } @else { p id="record" { "Dedupe holds no golden record with this id." } }
            h3 { "Source records" }
            @let sources: Vec<&Lineage> = lineage.iter().filter(|l| l.kind == "source").collect();
            @if sources.is_empty() { p { "None." } }
            @else { table id="sources" {
                tr { th { "System" } th { "Object" } th { "Source id" } th { "First seen" } th { "Last event" } }
                @for l in &sources {
                    tr data-system=(l.system) { td { (l.system) } td { (l.object) } td { (l.source_id) }
                         td { (seen(l.first_seen)) } td { (seen(l.last_seen)) } }
                }
            } }
            h3 { "Source events applied" }
            @let events: Vec<&Lineage> = lineage.iter().filter(|l| l.kind == "event").collect();
            @if events.is_empty() { p { "None kept." } }
            @else { table id="events" {
                tr { th { "Event" } th { "System" } th { "Outcome" } th { "Version" } th { "Processed" } }
                @for l in &events {
                    tr { td { (l.event_id) } td { (l.system) } td { (l.outcome) }
                         td { (l.version.map_or_else(|| "—".to_owned(), |v| v.to_string())) }
                         td { (seen(l.last_seen)) } }
                }
            } }
            h2 { "Identity conflicts" }
            @if conflicts.is_empty() { p { "None seen." } }
            @else { table {
                tr { th { "Event" } th { "Golden A" } th { "Golden B" } th { "Detail" } th { "Detected" } th { "Resolved by" } }
                @for c in &conflicts {
                    tr { td { (c.event_id) } td { (c.golden_a) } td { (c.golden_b) }
                         td { (c.detail) } td { (utc(Some(&switchyard_proto::timestamp(c.detected_at)))) }
                         td { (c.resolved_by.as_deref().unwrap_or_default()) } }
                }
            } }
            h2 { "Merges and un-merges" }
            @if commands.is_empty() { p { "None seen." } }
            @else { table {
                tr { th { "Command" } th { "Kind" } th { "Survivor" } th { "Merged" } th { "Applied" } th { "Error" } th { "Received" } }
                @for c in &commands {
                    tr { td { (c.command_id) } td { (c.kind) } td { (c.survivor) }
                         td { (c.merged) } td { (c.applied) } td { (c.error) }
                         td { (utc(Some(&switchyard_proto::timestamp(c.received_at)))) } }
                }
            } }
        },
    )
    .into_response()
}
