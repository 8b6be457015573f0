//! The review pages: identity conflicts and near-duplicates, a page at a time, each with why it
//! was raised; operators close one by merging the two records or keeping them apart, after a
//! confirmation page, through the same audited admin API calls as the CLI.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use switchyard_proto::v1::admin_server::Admin as _;
use switchyard_proto::v1::{Conflict, KeepApartRequest, ListConflictsRequest, MergeGoldenRequest};

use super::{Dashboard, as_role, error_page, page, utc};
use crate::admin::Role;

/// Entries per page.
const PAGE: u32 = 100;

#[derive(Debug, serde::Deserialize, Default)]
pub(super) struct ReviewQuery {
    /// The next page: entries with an id below this.
    #[serde(default)]
    before: u64,
    /// Only this kind.
    #[serde(default)]
    kind: String,
    /// Closed entries too.
    #[serde(default)]
    all: bool,
}

/// How a conflict reads to a person.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "phone_shared" => "phone shared, email differs",
        "near_duplicate" => "near-duplicate",
        "destination_duplicates" => "a destination holds several records",
        _ => "keys disagree",
    }
}

/// Whether the conflict is a pair of golden records (to merge or keep apart). A
/// `destination_duplicates` conflict names one golden record and the destination's records in
/// its detail: those are merged in the vendor, and the conflict only closed here.
fn is_pair(c: &Conflict) -> bool {
    !c.golden_b.is_empty()
}

pub(super) async fn conflicts_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Query(query): Query<ReviewQuery>,
) -> Response {
    let role = session!(dash, headers);
    let listed = dash
        .admin
        .list_conflicts(as_role(
            role,
            ListConflictsRequest {
                limit: PAGE,
                before_id: query.before,
                kind: query.kind.clone(),
                open_only: !query.all,
                ..Default::default()
            },
        ))
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(s) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()),
    };
    let filter = |kind: &str, all: bool| format!("/conflicts?kind={kind}&all={all}");
    page(
        "Identity review",
        Some(role),
        html! {
            p { "Show: "
                a href=(filter("", query.all)) { "every kind" } " · "
                a href=(filter("keys_disagree", query.all)) { "keys disagree" } " · "
                a href=(filter("phone_shared", query.all)) { "phone shared" } " · "
                a href=(filter("near_duplicate", query.all)) { "near-duplicates" } " · "
                a href=(filter("destination_duplicates", query.all)) { "destination duplicates" } " · "
                @if query.all { a href=(filter(&query.kind, false)) { "open only" } }
                @else { a href=(filter(&query.kind, true)) { "closed too" } } }
            @if listed.conflicts.is_empty() { p { "Nothing to review." } }
            @else {
                table {
                    tr { th { "#" } th { "Kind" } th { "Object" } th { "Golden A" } th { "Golden B" }
                         th { "Why" } th { "Detected" } th { "State" } }
                    @for c in &listed.conflicts {
                        tr data-conflict=(c.id) {
                            td { (c.id) } td { (kind_label(&c.kind)) } td { (c.object) }
                            td { a href={ "/golden/" (c.object) "/" (c.golden_a) } { (c.golden_a) } }
                            td { @if is_pair(c) {
                                a href={ "/golden/" (c.object) "/" (c.golden_b) } { (c.golden_b) } } }
                            td { @if c.evidence.is_empty() { (c.detail) }
                                 @else { @for e in &c.evidence { (e) br; } } }
                            td { (utc(c.detected_at.as_ref())) }
                            td {
                                @if c.resolved_at.is_some() { "closed: " (c.resolved_by) }
                                @else if role == Role::Operator && is_pair(c) {
                                    a href={ "/conflicts/" (c.id) "/merge" } { "Merge…" } " "
                                    a href={ "/conflicts/" (c.id) "/keep-apart" } { "Keep apart…" }
                                } @else if role == Role::Operator {
                                    a href={ "/conflicts/" (c.id) "/keep-apart" } { "Close…" }
                                } @else { "open" }
                            }
                        }
                    }
                }
            }
            @if listed.next_before_id != 0 {
                p { a rel="next" href={ (filter(&query.kind, query.all)) "&before=" (listed.next_before_id) } { "Older →" } }
            }
        },
    )
    .into_response()
}

/// Conflict `id`, read through the admin API (the entry at or below `id`, newest first).
async fn find(dash: &Dashboard, role: Role, id: u64) -> Result<Conflict, Response> {
    let listed = dash
        .admin
        .list_conflicts(as_role(
            role,
            ListConflictsRequest {
                limit: 1,
                before_id: id.saturating_add(1),
                ..Default::default()
            },
        ))
        .await
        .map_err(|s| error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()))?;
    listed
        .into_inner()
        .conflicts
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| {
            error_page(
                StatusCode::NOT_FOUND,
                Some(role),
                &format!("No conflict {id}."),
            )
        })
}

/// The operator's session and conflict `id`, or the page that refuses.
async fn operator_and_conflict(
    dash: &Dashboard,
    headers: &HeaderMap,
    id: u64,
) -> Result<(Role, Conflict), Response> {
    let Some(role) = dash.session(headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    if role != Role::Operator {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            Some(role),
            "Merging and keeping apart need the operator token.",
        ));
    }
    Ok((role, find(dash, role, id).await?))
}

/// The operator's session and conflict `id` when it is a pair of golden records to merge.
async fn operator_and_pair(
    dash: &Dashboard,
    headers: &HeaderMap,
    id: u64,
) -> Result<(Role, Conflict), Response> {
    let (role, c) = operator_and_conflict(dash, headers, id).await?;
    if !is_pair(&c) {
        return Err(error_page(
            StatusCode::CONFLICT,
            Some(role),
            &format!(
                "Conflict {id} is not two golden records: {}. Merge those records in the \
                 destination, replay the dead letter, then close the conflict.",
                c.detail
            ),
        ));
    }
    Ok((role, c))
}

pub(super) async fn confirm_merge(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let (role, c) = match operator_and_pair(&dash, &headers, id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    confirmation(
        role,
        &format!("Merge the two records of conflict {id}?"),
        html! {
            "Golden " code { (c.golden_b) } " is merged into " code { (c.golden_a) }
            ": its source ids move, its values fill the gaps of the other, nothing is overwritten. "
            "It can be undone (un-merge). The merge is written to the audit log."
        },
        &format!("/conflicts/{id}/merge"),
        "Merge",
    )
}

/// A page that says what an action does and asks before it is taken.
fn confirmation(
    role: Role,
    title: &str,
    what: maud::Markup,
    action: &str,
    button: &str,
) -> Response {
    page(
        title,
        Some(role),
        html! {
            p { (what) }
            form method="post" action=(action) {
                button type="submit" name="confirm" value="yes" { (button) }
            }
            p { a href="/conflicts" { "Cancel" } }
        },
    )
    .into_response()
}

pub(super) async fn merge(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let (role, c) = match operator_and_pair(&dash, &headers, id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let merged = dash
        .admin
        .merge_golden(as_role(
            role,
            MergeGoldenRequest {
                object: c.object.clone(),
                survivor: c.golden_a.clone(),
                merged: c.golden_b.clone(),
                reason: format!("dashboard review of conflict {id}"),
            },
        ))
        .await;
    match merged {
        Ok(reply) => {
            let reply = reply.into_inner();
            let outcome = match &reply.result {
                Some(r) if r.applied => "merged".to_owned(),
                Some(r) => format!("refused: {}", r.error),
                None => "sent; dedupe has not answered yet".to_owned(),
            };
            page(
                &format!("Conflict {id}"),
                Some(role),
                html! { p id="merged" { (outcome) " (command " code { (reply.command_id) } ")" }
                p { a href="/conflicts" { "Back to the review" } } },
            )
            .into_response()
        }
        Err(s) => error_page(StatusCode::BAD_GATEWAY, Some(role), s.message()),
    }
}

pub(super) async fn confirm_keep_apart(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let (role, c) = match operator_and_conflict(&dash, &headers, id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !is_pair(&c) {
        return confirmation(
            role,
            &format!("Close conflict {id}?"),
            html! {
                (c.detail) ". Close it once those records are merged in the destination and "
                "the dead letter replayed. This is written to the audit log."
            },
            &format!("/conflicts/{id}/keep-apart"),
            "Close",
        );
    }
    confirmation(
        role,
        &format!("Keep the two records of conflict {id} apart?"),
        html! {
            code { (c.golden_a) } " and " code { (c.golden_b) }
            " stay two people; the pair is closed and not raised for review again. "
            "This is written to the audit log."
        },
        &format!("/conflicts/{id}/keep-apart"),
        "Keep apart",
    )
}

pub(super) async fn keep_apart(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let (role, _) = match operator_and_conflict(&dash, &headers, id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let kept = dash
        .admin
        .keep_apart(as_role(
            role,
            KeepApartRequest {
                id,
                reason: "dashboard review".to_owned(),
            },
        ))
        .await;
    match kept {
        Ok(_) => Redirect::to("/conflicts").into_response(),
        Err(s) => error_page(StatusCode::BAD_GATEWAY, Some(role), s.message()),
    }
}
