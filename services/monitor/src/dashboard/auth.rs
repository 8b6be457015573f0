//! Logging in and out: an admin token is swapped for a random session id in an HttpOnly,
//! SameSite=Strict cookie; each request's role is read back from it, and admin API calls are made
//! as that role.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use tonic::Request;

use super::{Dashboard, error_page, page};
use crate::admin::Role;

const COOKIE: &str = "switchyard_session";
/// Sessions end after a working day; logging in again is cheap.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

impl Dashboard {
    /// The role of the session named by the request's cookie, if it is live.
    pub(super) fn session(&self, headers: &HeaderMap) -> Option<Role> {
        let id = cookie(headers, COOKIE)?;
        let mut sessions = self.sessions.lock().ok()?;
        sessions.retain(|_, (_, expires)| *expires > Instant::now());
        sessions.get(&id).map(|(role, _)| *role)
    }
}

/// A value of the `Cookie` header.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A request to the admin service as the session's role, as its interceptor would have left it.
pub(super) fn as_role<T>(role: Role, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(role);
    request
}

pub(super) async fn login_page() -> Response {
    page(
        "Log in",
        None,
        html! {
            form method="post" action="/login" {
                label { "Admin token " input type="password" name="token" autocomplete="off"; }
                " " button type="submit" { "Log in" }
            }
        },
    )
    .into_response()
}

pub(super) async fn login(State(dash): State<Dashboard>, body: Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(role) = dash.auth.role_of(&token) else {
        return error_page(StatusCode::UNAUTHORIZED, None, "That token is not valid.");
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut sessions) = dash.sessions.lock() {
        sessions.insert(id.clone(), (role, Instant::now() + SESSION_TTL));
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(super) async fn logout(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    if let (Some(id), Ok(mut sessions)) = (cookie(&headers, COOKIE), dash.sessions.lock()) {
        sessions.remove(&id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "switchyard_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; switchyard_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
