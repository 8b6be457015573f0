//! The generic `webhook` destination: a JSON POST signed the Standard Webhooks way, with a
//! `webhook-id` that stays the same across retries so the receiver can drop repeats.

use std::time::{Duration, SystemTime};

use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::signing::SigningKey;

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
}

/// A configured webhook destination.
#[derive(Debug)]
pub struct WebhookDestination {
    pub name: String,
    url: String,
    key: SigningKey,
    client: reqwest::Client,
}

impl WebhookDestination {
    /// Builds the destination; the secret was resolved from the environment by the config loader.
    pub fn new(config: &DestinationConfig) -> Result<Self, String> {
        let secret = config
            .secret
            .as_ref()
            .ok_or_else(|| format!("destination {}: secret not resolved", config.name))?;
        let key = SigningKey::from_secret(secret)
            .map_err(|e| format!("destination {}: {e}", config.name))?;
        let client = http_client(config)?;
        Ok(Self {
            name: config.name.clone(),
            url: config.base_url().to_owned(),
            key,
            client,
        })
    }

    /// POSTs `body` with `webhook_id`; Ok carries the 2xx status.
    #[tracing::instrument(
        skip_all,
        name = "destination write",
        fields(
            otel.kind = "client",
            otel.name = "destination write",
            http.request.method = "POST",
            destination = %self.name,
            http.response.status_code = tracing::field::Empty,
        )
    )]
    pub async fn send(&self, webhook_id: &str, body: Vec<u8>) -> Result<u16, SendError> {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json");
        for (name, value) in self.key.headers(webhook_id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await;
        let response = response.map_err(transport_error)?;
        classify(response).await
    }
}

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
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
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
    // A short excerpt explains a refusal; receivers' error bodies rarely need more.
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.trim().chars().take(200).collect();
    let reason = if excerpt.is_empty() {
        format!("destination answered {status}")
    } else {
        format!("destination answered {status}: {excerpt}")
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
