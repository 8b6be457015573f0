//! The dead letters: the list, one letter's summary (never its payload), and its replay, which
//! only an operator may confirm and which the admin API audits first.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use switchyard_proto::v1::admin_server::Admin as _;
use switchyard_proto::v1::{ListDeadLettersRequest, ReplayDeadLetterRequest};

use super::{Dashboard, as_role, error_page, page, utc};
use crate::admin::Role;

pub(super) async fn dlq_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let listed = dash
        .admin
        .list_dead_letters(as_role(
            role,
            ListDeadLettersRequest {
                limit: 1000,
                ..Default::default()
            },
        ))
        .await;
    let letters = match listed {
        Ok(r) => r.into_inner().dead_letters,
        Err(s) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()),
    };
    page(
        "Dead letters",
        Some(role),
        html! {
            @if letters.is_empty() { p { "No dead letters." } }
            @else {
                table {
                    tr { th { "Sequence" } th { "Stage" } th { "Key" } th { "Destination" } th { "Error class" }
                         th { "Reason" } th { "Failed at" } }
                    @for l in &letters {
                        tr { td { a href={ "/dlq/" (l.sequence) } { (l.sequence) } } td { (l.stage) }
                             td { (l.key) } td { (l.destination) } td { (l.error_class) } td { (l.reason) }
                             td { (utc(l.failed_at.as_ref())) } }
                    }
                }
            }
        },
    )
    .into_response()
}

/// One dead letter by its sequence, as the admin API summarises it (never its payload, which
/// may hold personal data), wherever it is in the DLQ.
async fn find_letter(
    dash: &Dashboard,
    role: Role,
    seq: u64,
) -> Result<switchyard_proto::v1::DeadLetterSummary, Response> {
    let found = dash
        .admin
        .get_dead_letter(as_role(
            role,
            switchyard_proto::v1::GetDeadLetterRequest { sequence: seq },
        ))
        .await;
    match found {
        Ok(detail) => detail.into_inner().summary.ok_or_else(|| {
            error_page(
                StatusCode::NOT_FOUND,
                Some(role),
                &format!("No dead letter {seq}."),
            )
        }),
        Err(status) if status.code() == tonic::Code::NotFound => Err(error_page(
            StatusCode::NOT_FOUND,
            Some(role),
            &format!("No dead letter {seq}."),
        )),
        Err(status) => Err(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(role),
            status.message(),
        )),
    }
}

pub(super) async fn letter_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    let letter = match find_letter(&dash, role, seq).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    page(
        &format!("Dead letter {seq}"),
        Some(role),
        html! {
            table {
                tr { th { "Stage" } td { (letter.stage) } }
                tr { th { "Key" } td { (letter.key) } }
                tr { th { "Destination" } td { (letter.destination) } }
                tr { th { "Error class" } td { (letter.error_class) } }
                tr { th { "Reason" } td { (letter.reason) } }
                tr { th { "Attempts" } td { (letter.attempts) } }
                tr { th { "HTTP status" } td { (letter.http_status) } }
                tr { th { "Original subject" } td { (letter.original_subject) } }
                tr { th { "Failed at" } td { (utc(letter.failed_at.as_ref())) } }
            }
            @if role == Role::Operator {
                form method="get" action={ "/dlq/" (seq) "/replay" } {
                    button type="submit" { "Replay…" }
                }
            } @else {
                p { "Replaying needs the operator token." }
            }
        },
    )
    .into_response()
}

pub(super) async fn confirm_page(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    if role != Role::Operator {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(role),
            "Replaying needs the operator token.",
        );
    }
    let letter = match find_letter(&dash, role, seq).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    page(
        &format!("Replay dead letter {seq}?"),
        Some(role),
        html! {
            p { "This publishes the letter back onto " code { (letter.original_subject) }
                " so " (letter.stage) " handles it again. The replay is written to the audit log." }
            form method="post" action={ "/dlq/" (seq) "/replay" } {
                button type="submit" name="confirm" value="yes" { "Replay" }
            }
            p { a href={ "/dlq/" (seq) } { "Cancel" } }
        },
    )
    .into_response()
}

pub(super) async fn replay(
    State(dash): State<Dashboard>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let role = session!(dash, headers);
    if role != Role::Operator {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(role),
            "Replaying needs the operator token.",
        );
    }
    // The admin API's own method: audit log first, then the replay.
    let replayed = dash
        .admin
        .replay_dead_letter(as_role(role, ReplayDeadLetterRequest { sequence: seq }))
        .await;
    match replayed {
        Ok(r) => page(
            &format!("Dead letter {seq} replayed"),
            Some(role),
            html! { p id="replayed" { "Replayed onto " code { (r.into_inner().subject) } "." }
            p { a href="/dlq" { "Back to dead letters" } } },
        )
        .into_response(),
        Err(s) => error_page(StatusCode::BAD_GATEWAY, Some(role), s.message()),
    }
}
