//! The frame every page shares (title, navigation, the session's role and a log-out button), the
//! error page, and how times read.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets::CSS;
use crate::admin::Role;

pub(super) fn page(title: &str, role: Option<Role>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    link rel="icon" type="image/svg+xml" href="/favicon.svg";
                    title { "Switchyard — " (title) }
                    style { (maud::PreEscaped(CSS)) }
                }
                body {
                    @if let Some(role) = role {
                        nav {
                            a href="/" { "Flows" } " · " a href="/alerts" { "Alerts" } " · "
                            a href="/dlq" { "Dead letters" } " · " a href="/drift" { "Schema drift" } " · "
                            a href="/conflicts" { "Identity review" } " · "
                            a href="/golden" { "Golden record" }
                            form.inline method="post" action="/logout" {
                                " (" (role.as_str()) ") " button type="submit" { "Log out" }
                            }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
        .into_string(),
    )
}

pub(super) fn error_page(status: StatusCode, role: Option<Role>, message: &str) -> Response {
    (status, page("Error", role, html! { p { (message) } })).into_response()
}

pub(super) fn utc(t: Option<&switchyard_proto::Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), |t| crate::clock::utc(t.seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let hostile = "<script>alert(1)</script>\"'&";
        let Html(body) = page(hostile, Some(Role::Read), html! { p { (hostile) } });
        assert!(!body.contains("<script>"));
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"));
    }
}
