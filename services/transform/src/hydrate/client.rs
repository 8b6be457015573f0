//! One source's API client: a token bucket matched to the vendor's quota, and the chassis's
//! OAuth2 token manager (access token cached until shortly before it expires, refreshed then and
//! once on a 401, rotated refresh tokens kept in transform's `oauth_tokens` table).

use std::num::NonZeroU32;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use switchyard_chassis::config::{SourceApiConfig, SourceKind};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::oauth::{ClientAuth, OAuthSettings, TokenError, TokenManager, TokenTable};

use super::HydrateError;
use super::target::{Target, unwrap};

/// The longest a read waits for a token of the bucket; past that the event is retried later
/// rather than held beyond the consumer's ack wait.
const RATE_WAIT: Duration = Duration::from_secs(5);

/// Transform keeps each source's tokens in its own table, keyed by source name.
const TOKENS: TokenTable = TokenTable {
    table: "oauth_tokens",
    key_column: "source",
};

/// A configured source API.
#[derive(Debug)]
pub struct Client {
    source: String,
    base: reqwest::Url,
    http: reqwest::Client,
    limiter: governor::DefaultDirectRateLimiter,
    tokens: TokenManager,
}

impl From<TokenError> for HydrateError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Transient {
                reason,
                retry_after,
            } => Self::Transient {
                reason,
                retry_after,
            },
            TokenError::Permanent(reason) => Self::Permanent(reason),
        }
    }
}

impl Client {
    /// The client, starting from the tokens kept in the database when there are any.
    pub async fn new(
        source: &str,
        kind: SourceKind,
        config: &SourceApiConfig,
        pool: Pool,
    ) -> Result<Self, String> {
        let base =
            reqwest::Url::parse(config.base_url(kind)).map_err(|e| format!("base_url: {e}"))?;
        if base.cannot_be_a_base() {
            return Err("base_url: not a base URL".to_owned());
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            // Redirects could carry the bearer token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let rate = NonZeroU32::new(config.rate_per_second(kind)).unwrap_or(NonZeroU32::MIN);
        let settings = OAuthSettings {
            owner: source.to_owned(),
            token_url: config.token_url(kind).to_owned(),
            // Intuit and Xero take the client credentials as HTTP Basic; HubSpot as form fields.
            client_auth: if kind == SourceKind::Hubspot {
                ClientAuth::Form
            } else {
                ClientAuth::Basic
            },
            client_id: config.client_id().cloned(),
            client_secret: config.client_secret().cloned(),
            refresh_token: config.refresh_token().cloned(),
            access_token: config.access_token().cloned(),
            timeout: config.timeout,
            table: TOKENS,
        };
        let tokens = TokenManager::new(settings, pool).await.map_err(|e| {
            if e.starts_with("no credentials") {
                "no credentials resolved (transform reads them from the environment)".to_owned()
            } else {
                e
            }
        })?;
        Ok(Self {
            source: source.to_owned(),
            base,
            http,
            limiter: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
            tokens,
        })
    }

    /// Reads the record `target` names: with a fresh token, once more after a refresh on a 401.
    #[tracing::instrument(
        skip_all,
        name = "vendor read",
        fields(otel.kind = "client", otel.name = "vendor read", source = %self.source, read = %target.describe)
    )]
    pub async fn fetch(&self, target: &Target) -> Result<Value, HydrateError> {
        let what = format!("hydrate {}", target.describe);
        let (token, generation) = self.tokens.access_token(&what).await?;
        let response = self.send(target, &token).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED && self.tokens.refreshes() {
            tracing::info!("access token refused; refreshing once");
            let token = self.tokens.refresh_after(generation, &what).await?;
            let response = self.send(target, &token).await?;
            return read(target, response, " after a token refresh").await;
        }
        read(target, response, "").await
    }

    async fn send(
        &self,
        target: &Target,
        token: &SecretString,
    ) -> Result<reqwest::Response, HydrateError> {
        if tokio::time::timeout(RATE_WAIT, self.limiter.until_ready())
            .await
            .is_err()
        {
            return Err(HydrateError::Transient {
                reason: format!(
                    "hydrate {}: waiting for the source's rate limit",
                    target.describe
                ),
                retry_after: Some(RATE_WAIT),
            });
        }
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&target.segments);
        }
        if !target.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(target.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = self.http.get(url).bearer_auth(token.expose_secret());
        for (name, value) in &target.headers {
            request = request.header(*name, value);
        }
        request
            .send()
            .await
            .map_err(|e| transport(&target.describe, &e))
    }
}

/// Sorts the vendor's answer: 2xx is the record; 408, 429 and 5xx are retried (honouring
/// `Retry-After`); any other status is permanent. Bodies stay out of reasons: they may hold
/// personal data.
async fn read(
    target: &Target,
    response: reqwest::Response,
    context: &str,
) -> Result<Value, HydrateError> {
    let status = response.status();
    if status.is_success() {
        let body = response.json::<Value>().await.map_err(|e| {
            HydrateError::transient(format!(
                "hydrate {}: the answer could not be read: {}",
                target.describe,
                e.without_url()
            ))
        })?;
        return unwrap(target, body);
    }
    let reason = format!(
        "hydrate {}: {status} from the vendor API{context}",
        target.describe
    );
    if is_transient(status) {
        Err(HydrateError::Transient {
            reason,
            retry_after: retry_after(&response),
        })
    } else {
        Err(HydrateError::Permanent(reason))
    }
}

fn is_transient(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// A request that got no answer: always worth retrying.
fn transport(what: &str, error: &reqwest::Error) -> HydrateError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    HydrateError::transient(format!("{what}: {kind}"))
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    switchyard_chassis::retry::parse_retry_after(value)
}
