//! Every way a webhook is refused, and the one place that turns it into an HTTP answer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_chassis::signing::SignatureError;

/// Why ingest refused a webhook. None of these reach the pipeline; all are counted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown source {0:?}")]
    UnknownSource(String),
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("body is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("request headers are larger than the {0}-byte limit")]
    HeadersTooLarge(usize),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the pipeline is behind; retry later")]
    Overloaded,
    #[error("cannot read the request body: {0}")]
    Body(String),
    #[error("event bus unavailable; retry later")]
    Unavailable,
}

impl IngestError {
    /// The status code the sender sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSource(_) => StatusCode::NOT_FOUND,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::MalformedJson(_) | Self::Malformed(_) | Self::Body(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A bounded label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::UnknownSource(_) => "unknown_source",
            Self::Signature(SignatureError::StaleTimestamp) => "stale_timestamp",
            Self::Signature(_) => "bad_signature",
            Self::TooLarge(_) => "too_large",
            Self::HeadersTooLarge(_) => "headers_too_large",
            Self::MalformedJson(_) | Self::Malformed(_) | Self::Body(_) => "malformed",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(serde_json::json!({
            "error": { "code": self.outcome(), "message": self.to_string() }
        }));
        let mut response = (status, body).into_response();
        // Senders that honour it come back once the bus is likely to be back, or the backlog
        // has drained.
        let retry_after = match self {
            Self::Unavailable => Some("5"),
            Self::Overloaded => Some("1"),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        // These are answered without reading the body, so the connection cannot carry another
        // request: say so, or a sender that keeps connections alive sends its next request into
        // a socket the server is closing and sees a broken pipe instead of an answer.
        if matches!(self, Self::TooLarge(_) | Self::HeadersTooLarge(_)) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
