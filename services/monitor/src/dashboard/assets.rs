//! The dashboard's static assets: its icon, served to anyone, and the style sheet every page
//! inlines.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A switch-track glyph: two lines that join, in the dashboard's link colour.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1a4f8b"/><path d="M3 12h10M3 4h3l5 8" stroke="#fff" stroke-width="2" fill="none"/></svg>"##;

/// The icon, for anyone: it says nothing about the hub.
pub(super) async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

pub(super) const CSS: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}\
.warning{color:#a60}.failing{color:#b00;font-weight:bold}form.inline{display:inline}\
nav{margin-bottom:1em}";
