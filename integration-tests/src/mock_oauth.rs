//! The OAuth2 refresh-token grant as the vendors' token endpoints answer it, shared by the mock of
//! hydration reads (`vendors`) and the mock of destination writes (`vendor_apis`): access tokens
//! are counted, refresh tokens rotate where the vendor rotates them, and a stale one is refused.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

/// One vendor's tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The refresh token the endpoint accepts now.
    pub refresh: String,
    /// Access tokens the API accepts.
    pub valid: HashSet<String>,
    pub issued: u64,
    pub refreshes: usize,
    pub refused: usize,
}

impl Tokens {
    /// Answers a refresh grant (`form`) from a client whose credentials were `client_ok`: a new
    /// access token `<name>-access-<n>` (and a new refresh token when the vendor `rotates`), or
    /// the status and OAuth2 error code to answer with (see [`refused`]).
    pub fn grant(
        &mut self,
        name: &str,
        client_ok: bool,
        form: &HashMap<String, String>,
        rotates: bool,
    ) -> Result<(String, String), (StatusCode, &'static str)> {
        if !client_ok {
            self.refused += 1;
            return Err((StatusCode::UNAUTHORIZED, "invalid_client"));
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token")
            || form.get("refresh_token") != Some(&self.refresh)
        {
            self.refused += 1;
            return Err((StatusCode::BAD_REQUEST, "invalid_grant"));
        }
        self.issued += 1;
        self.refreshes += 1;
        let access = format!("{name}-access-{}", self.issued);
        self.valid.insert(access.clone());
        if rotates {
            self.refresh = format!("{name}-refresh-{}", self.issued + 1);
        }
        Ok((access, self.refresh.clone()))
    }
}

/// A token endpoint's refusal: the status and `{"error": <OAuth2 error code>}`.
pub(crate) fn refused((code, error): (StatusCode, &'static str)) -> Response {
    (code, axum::Json(json!({ "error": error }))).into_response()
}
