//! The HTTP side every vendor connector shares: the API base, the credentials (a bearer token
//! refreshed through the chassis's OAuth2 token manager, or an API key), one refresh and one
//! resend on a 401, and the answer sorted into success or a [`SendError`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use switchyard_chassis::config::{DestinationConfig, DestinationKind};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::oauth::{ClientAuth, OAuthSettings, TokenError, TokenManager, TokenTable};

use super::http::{SendError, TOKEN_REFRESH_FAILED, refusal, transport_error};

/// Deliver keeps each destination's OAuth2 tokens in its own table, keyed by destination name.
const TOKENS: TokenTable = TokenTable {
    table: "destination_oauth_tokens",
    key_column: "destination",
};

/// How requests prove who they are.
#[derive(Debug)]
enum Auth {
    /// `Authorization: Bearer …`: an OAuth2 access token (refreshed when refused) or a static
    /// token such as a HubSpot private-app token or a Stripe secret key.
    Bearer(Box<TokenManager>),
    /// A header carrying the API key as the vendor spells it (Klaviyo: `Klaviyo-API-Key <key>`).
    Key {
        header: &'static str,
        prefix: &'static str,
        key: SecretString,
    },
}

/// A 2xx answer: its status and its JSON body (`null` when empty).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

/// One destination's API.
#[derive(Debug)]
pub(crate) struct Api {
    pub name: String,
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl Api {
    /// An API called with bearer tokens: `secret_env`'s as is, or OAuth2 refreshed ones (the
    /// rotated refresh token kept in deliver's `destination_oauth_tokens`).
    pub async fn bearer(config: &DestinationConfig, pool: Pool) -> Result<Self, String> {
        let settings = OAuthSettings {
            owner: config.name.clone(),
            token_url: config.token_url().to_owned(),
            // Intuit and Xero take the client credentials as HTTP Basic; HubSpot and Salesforce
            // as form fields.
            client_auth: match config.kind {
                DestinationKind::Quickbooks | DestinationKind::Xero => ClientAuth::Basic,
                _ => ClientAuth::Form,
            },
            client_id: config.client_id().cloned(),
            client_secret: config.client_secret().cloned(),
            refresh_token: config.refresh_token().cloned(),
            access_token: config.secret().cloned(),
            timeout: config.timeout,
            table: TOKENS,
        };
        let mut tokens = TokenManager::new(settings, pool)
            .await
            .map_err(|e| format!("destination {}: {e}", config.name))?;
        if let Some(observer) = &config.refresh_observer {
            tokens = tokens.observed(observer.clone());
        }
        Self::with(config, Auth::Bearer(Box::new(tokens)))
    }

    /// An API called with the key in `secret_env`, sent in `header` after `prefix`.
    pub fn key(
        config: &DestinationConfig,
        header: &'static str,
        prefix: &'static str,
    ) -> Result<Self, String> {
        let key = config
            .secret()
            .cloned()
            .ok_or_else(|| format!("destination {}: API key not resolved", config.name))?;
        Self::with(
            config,
            Auth::Key {
                header,
                prefix,
                key,
            },
        )
    }

    fn with(config: &DestinationConfig, auth: Auth) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("destination {}: {e}", config.name))?;
        Ok(Self {
            name: config.name.clone(),
            base: config.base_url().trim_end_matches('/').to_owned(),
            http,
            auth,
        })
    }

    /// The URL of `path` (which starts with `/`) on this API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request: `prepare` adds the body and the vendor's headers, this adds the
    /// credentials. A 401 with refreshable credentials refreshes the token once and sends again.
    #[tracing::instrument(
        skip_all,
        name = "destination write",
        fields(
            otel.kind = "client",
            otel.name = "destination write",
            http.request.method = %method,
            destination = %self.name,
            http.response.status_code = tracing::field::Empty,
        )
    )]
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        prepare: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Answer, SendError> {
        let request = || prepare(self.http.request(method.clone(), url));
        let what = format!("destination {}", self.name);
        let response = match &self.auth {
            Auth::Key {
                header,
                prefix,
                key,
            } => {
                send(request().header(*header, format!("{prefix}{}", key.expose_secret()))).await?
            }
            Auth::Bearer(tokens) => {
                let (token, generation) = tokens
                    .access_token(&what)
                    .await
                    .map_err(|e| self.refresh_failed(e))?;
                let response = send(request().bearer_auth(token.expose_secret())).await?;
                if response.status() == reqwest::StatusCode::UNAUTHORIZED && tokens.refreshes() {
                    tracing::info!("access token refused; refreshing once");
                    let token = tokens
                        .refresh_after(generation, &what)
                        .await
                        .map_err(|e| self.refresh_failed(e))?;
                    send(request().bearer_auth(token.expose_secret())).await?
                } else {
                    response
                }
            }
        };
        let status = response.status().as_u16();
        tracing::Span::current().record("http.response.status_code", status);
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let text = response.text().await.map_err(transport_error)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| SendError::Retryable {
                status: Some(status),
                retry_after: None,
                reason: format!("destination answered {status} with a body that is not JSON"),
            })?
        };
        Ok(Answer { status, body })
    }

    /// A refresh that failed is retried later whatever the cause: the token endpoint may be
    /// down, and an operator can re-authorise the connection before the attempts run out. The
    /// reason names the failure, never the token.
    fn refresh_failed(&self, error: TokenError) -> SendError {
        let (reason, retry_after) = match error {
            TokenError::Transient {
                reason,
                retry_after,
            } => (reason, retry_after),
            TokenError::Permanent(reason) => (reason, None),
        };
        tracing::warn!(destination = %self.name, %reason, "OAuth2 token refresh failed; will retry");
        SendError::Retryable {
            status: None,
            retry_after,
            reason: format!("{TOKEN_REFRESH_FAILED}: {reason}"),
        }
    }
}

async fn send(request: RequestBuilder) -> Result<reqwest::Response, SendError> {
    request.send().await.map_err(transport_error)
}
