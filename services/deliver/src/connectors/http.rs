//! How a destination's HTTP answer reads: done, worth another try, refused for good, or gone; the
//! client every connector calls with, and the helpers that sort its answers.

use std::time::Duration;

use switchyard_chassis::bus::{ErrorClass, RESPONSE_BODY_LIMIT, trim_to};
use switchyard_chassis::config::DestinationConfig;

/// How a send failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 408, 429, 5xx, timeouts and connection errors.
    #[error("{reason}")]
    Retryable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Any other non-2xx answer: the request itself is wrong; retrying cannot help.
    #[error("{reason}")]
    Permanent { status: u16, reason: String },
    /// 410: the endpoint or account no longer exists. Nothing later can succeed either, so the
    /// flow pauses instead of trying every change.
    #[error("{reason}")]
    Gone { reason: String },
}

impl SendError {
    /// The HTTP status, or 0 when none came back.
    pub fn status(&self) -> u16 {
        match self {
            Self::Retryable { status, .. } => status.unwrap_or(0),
            Self::Permanent { status, .. } => *status,
            Self::Gone { .. } => 410,
        }
    }

    /// The dead letter's class of this failure. Answers are sorted by status; failures without
    /// one by the start of their reason, which [`transport_error`] and the token refresh
    /// (`api.rs`) write.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Gone { .. } => ErrorClass::Gone,
            // No answer: the record or the configuration cannot be sent.
            Self::Permanent { status: 0, .. } => ErrorClass::Invalid,
            Self::Permanent { status, .. } => ErrorClass::of_status(*status),
            // A 2xx the connector could not use is the vendor's fault, like a 5xx.
            Self::Retryable {
                status: Some(status),
                ..
            } if *status < 400 => ErrorClass::ServerError,
            Self::Retryable {
                status: Some(status),
                ..
            } => ErrorClass::of_status(*status),
            Self::Retryable { reason, .. } if reason.starts_with(TIMED_OUT) => ErrorClass::Timeout,
            Self::Retryable { reason, .. }
                if reason.starts_with(CONNECTION_FAILED) || reason.starts_with(REQUEST_FAILED) =>
            {
                ErrorClass::Connection
            }
            Self::Retryable { reason, .. } if reason.starts_with(TOKEN_REFRESH_FAILED) => {
                ErrorClass::Auth
            }
            Self::Retryable { .. } => ErrorClass::Exhausted,
        }
    }

    /// The start of the destination's answer (trimmed to `RESPONSE_BODY_LIMIT` by [`refusal`],
    /// which puts it at the end of the reason); empty when none came back.
    pub fn response_body(&self) -> &str {
        let reason = match self {
            Self::Retryable { reason, .. }
            | Self::Permanent { reason, .. }
            | Self::Gone { reason } => reason.as_str(),
        };
        reason
            .strip_prefix(&format!("{REFUSED} {}: ", self.status()))
            .unwrap_or("")
    }
}

/// How reasons start, so [`SendError::class`] can tell failures without a status apart.
const TIMED_OUT: &str = "timed out";
const CONNECTION_FAILED: &str = "connection failed";
const REQUEST_FAILED: &str = "request failed";
pub(crate) const TOKEN_REFRESH_FAILED: &str = "token refresh failed";
/// A refusal's reason: `destination answered <status>: <the start of its body>`.
const REFUSED: &str = "destination answered";

/// The HTTP client for one destination: its timeout, our user agent.
pub(crate) fn http_client(config: &DestinationConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("destination {}: {e}", config.name))
}

/// A request that got no answer: always worth retrying.
pub(crate) fn transport_error(error: reqwest::Error) -> SendError {
    let what = if error.is_timeout() {
        TIMED_OUT
    } else if error.is_connect() {
        CONNECTION_FAILED
    } else {
        REQUEST_FAILED
    };
    SendError::Retryable {
        status: None,
        retry_after: None,
        reason: format!("{what}: {error}"),
    }
}

/// Sorts an answer: 2xx is done; 408, 429 and 5xx are retried (honouring `Retry-After`); 410
/// pauses the flow; any other status is permanent. The reason keeps the start of the body.
pub(crate) async fn classify(response: reqwest::Response) -> Result<u16, SendError> {
    let status = response.status().as_u16();
    tracing::Span::current().record("http.response.status_code", status);
    if response.status().is_success() {
        return Ok(status);
    }
    Err(refusal(response).await)
}

/// The error for a non-2xx answer (see [`classify`]).
pub(crate) async fn refusal(response: reqwest::Response) -> SendError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(switchyard_chassis::retry::parse_retry_after);
    // The start of the body explains a refusal (and is kept in the dead letter); receivers'
    // error bodies rarely need more. Never our request or its headers.
    let text = response.text().await.unwrap_or_default();
    let excerpt = trim_to(text.trim(), RESPONSE_BODY_LIMIT);
    let reason = if excerpt.is_empty() {
        format!("{REFUSED} {status}")
    } else {
        format!("{REFUSED} {status}: {excerpt}")
    };
    if status == 410 {
        SendError::Gone { reason }
    } else if status == 408 || status == 429 || status >= 500 {
        SendError::Retryable {
            status: Some(status),
            retry_after,
            reason,
        }
    } else {
        SendError::Permanent { status, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retryable(status: Option<u16>, reason: &str) -> SendError {
        SendError::Retryable {
            status,
            retry_after: None,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn failures_sort_into_dead_letter_classes() {
        assert_eq!(
            retryable(Some(503), "destination answered 503").class(),
            ErrorClass::ServerError
        );
        assert_eq!(
            retryable(Some(429), "destination answered 429").class(),
            ErrorClass::RateLimited
        );
        assert_eq!(
            retryable(None, "timed out: operation timed out").class(),
            ErrorClass::Timeout
        );
        assert_eq!(
            retryable(None, "connection failed: refused").class(),
            ErrorClass::Connection
        );
        assert_eq!(
            retryable(None, "token refresh failed: invalid_grant").class(),
            ErrorClass::Auth
        );
        assert_eq!(
            retryable(None, "deliver database unavailable: closed").class(),
            ErrorClass::Exhausted
        );
        assert_eq!(
            retryable(
                Some(200),
                "destination answered 200 with a body that is not JSON"
            )
            .class(),
            ErrorClass::ServerError
        );
        let permanent = |status| SendError::Permanent {
            status,
            reason: String::new(),
        };
        assert_eq!(permanent(400).class(), ErrorClass::ClientError);
        assert_eq!(permanent(403).class(), ErrorClass::Auth);
        assert_eq!(permanent(0).class(), ErrorClass::Invalid);
        assert_eq!(
            SendError::Gone {
                reason: String::new()
            }
            .class(),
            ErrorClass::Gone
        );
    }

    #[test]
    fn the_response_body_is_what_the_destination_answered() {
        let refused = SendError::Permanent {
            status: 422,
            reason: "destination answered 422: {\"error\":\"bad email\"}".to_owned(),
        };
        assert_eq!(refused.response_body(), "{\"error\":\"bad email\"}");
        let silent = SendError::Permanent {
            status: 422,
            reason: "destination answered 422".to_owned(),
        };
        assert_eq!(silent.response_body(), "");
        let ours = SendError::Permanent {
            status: 0,
            reason: "no email: the destination needs one".to_owned(),
        };
        assert_eq!(ours.response_body(), "");
    }
}
