//! OAuth2 access tokens for calls to vendor APIs, shared by transform (reading sources' records)
//! and deliver (writing to destinations): the access token is cached until shortly before it
//! expires, refreshed then and once on a 401, and the rotated refresh token (Intuit and Xero issue
//! a new one on every refresh) kept in the caller's PostgreSQL table, so a restart or another
//! replica never presents a refresh token the vendor has already retired.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// Refresh this long before the vendor says the access token expires, so no call races expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Where a service keeps its tokens: a table with `refresh_token`, `access_token` and
/// `expires_at` columns, keyed by `key_column` (transform: `oauth_tokens.source`; deliver:
/// `destination_oauth_tokens.destination`). Both are fixed names from code, never from config.
#[derive(Debug, Clone, Copy)]
pub struct TokenTable {
    pub table: &'static str,
    pub key_column: &'static str,
}

/// How the token endpoint wants the app's client credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (Intuit, Xero).
    Basic,
    /// `client_id` and `client_secret` form fields (HubSpot, Salesforce).
    Form,
}

/// Everything a [`TokenManager`] needs; the secrets come resolved from the environment.
#[derive(Debug)]
pub struct OAuthSettings {
    /// The row key (a source or destination name); also the `owner` field of log lines.
    pub owner: String,
    pub token_url: String,
    pub client_auth: ClientAuth,
    pub client_id: Option<SecretString>,
    pub client_secret: Option<SecretString>,
    /// The first refresh token; a newer one kept in the table wins.
    pub refresh_token: Option<SecretString>,
    /// A bearer token to use until the API refuses it (a private-app token, or one issued at
    /// connection time).
    pub access_token: Option<SecretString>,
    /// Per token request.
    pub timeout: Duration,
    pub table: TokenTable,
}

/// Why no usable access token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint or the database failed in a way worth another try (after at least
    /// `retry_after` when the endpoint said so).
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The refresh token or the client credentials were refused, or there is nothing to refresh
    /// with: an operator has to re-authorise the connection.
    #[error("{0}")]
    Permanent(String),
}

/// How one token refresh went, for an [`RefreshObserver`]: what an operator needs to know about
/// a connection's credentials, never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new access token was issued. `refresh_expires_in`: how long the refresh token stays
    /// valid, when the vendor says so (Intuit's `x_refresh_token_expires_in`).
    Refreshed {
        refresh_expires_in: Option<Duration>,
    },
    /// The refresh failed; `consecutive` counts failures since the last success (1 for the first).
    Failed { error: TokenError, consecutive: u32 },
}

/// Told the outcome of every refresh of a [`TokenManager`] (deliver turns it into credential
/// alerts). Called with the manager's lock held: it must not block or call back into the manager.
pub trait RefreshObserver: Send + Sync + std::fmt::Debug {
    /// `owner` is the manager's row key (a source or destination name).
    fn refreshed(&self, owner: &str, outcome: &RefreshOutcome);
}

/// The app's OAuth2 credentials.
#[derive(Debug)]
struct Credentials {
    client_id: SecretString,
    client_secret: SecretString,
    /// The refresh token from the environment: the fallback when the kept one is refused (an
    /// operator re-authorised the connection and set a new one).
    initial_refresh: SecretString,
}

#[derive(Debug, Default)]
struct Tokens {
    access: Option<SecretString>,
    /// None: valid until the API refuses it (a static token).
    expires_at: Option<OffsetDateTime>,
    refresh: Option<SecretString>,
    /// Bumped on every refresh, so a task that saw a 401 can tell whether another already
    /// refreshed instead of refreshing twice (which would burn a rotated refresh token).
    generation: u64,
    /// A rotated refresh token not yet in the database (it was down): stored at the next chance.
    unsaved: bool,
    /// Refreshes failed since the last success, for the observer.
    failures: u32,
    /// What the last grant said of the refresh token's own expiry, for the observer.
    refresh_expires_in: Option<Duration>,
}

/// What a token endpoint answers (RFC 6749 §5.1).
#[derive(Debug, serde::Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Intuit: seconds until the refresh token itself expires (about 100 days from issue).
    #[serde(default)]
    x_refresh_token_expires_in: Option<u64>,
}

/// One API connection's tokens.
#[derive(Debug)]
pub struct TokenManager {
    owner: String,
    token_url: String,
    client_auth: ClientAuth,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    tokens: Mutex<Tokens>,
    table: TokenTable,
    pool: Pool,
    observer: Option<Arc<dyn RefreshObserver>>,
}

impl TokenManager {
    /// Reports the outcome of every refresh from now on to `observer`.
    #[must_use]
    pub fn observed(mut self, observer: Arc<dyn RefreshObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The manager, starting from the tokens kept in the database when there are any.
    pub async fn new(settings: OAuthSettings, pool: Pool) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the client secret to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let credentials = match (
            settings.client_id,
            settings.client_secret,
            settings.refresh_token,
        ) {
            (Some(client_id), Some(client_secret), Some(initial_refresh)) => Some(Credentials {
                client_id,
                client_secret,
                initial_refresh,
            }),
            _ => None,
        };
        if credentials.is_none() && settings.access_token.is_none() {
            return Err("no credentials resolved from the environment".to_owned());
        }
        let mut tokens = Tokens {
            access: settings.access_token,
            refresh: credentials.as_ref().map(|c| c.initial_refresh.clone()),
            ..Tokens::default()
        };
        let manager = Self {
            owner: settings.owner,
            token_url: settings.token_url,
            client_auth: settings.client_auth,
            http,
            credentials,
            tokens: Mutex::new(Tokens::default()),
            table: settings.table,
            pool,
            observer: None,
        };
        if manager.credentials.is_some()
            && let Some(kept) = manager.load().await?
        {
            // A kept refresh token is newer than the environment's: it was rotated since.
            tokens.refresh = kept.refresh.or(tokens.refresh);
            if kept.access.is_some() && kept.expires_at.is_some() {
                tokens.access = kept.access;
                tokens.expires_at = kept.expires_at;
            }
        }
        *manager.tokens.lock().await = tokens;
        Ok(manager)
    }

    /// Whether a refused access token can be replaced (OAuth2 refresh is configured).
    pub fn refreshes(&self) -> bool {
        self.credentials.is_some()
    }

    /// A usable access token and the generation it belongs to; refreshed first when it is
    /// missing or about to expire. `what` starts every error reason (e.g. `hydrate hubspot
    /// contact 1`, `destination crm`).
    pub async fn access_token(&self, what: &str) -> Result<(SecretString, u64), TokenError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.unsaved {
            self.save(&mut tokens).await;
        }
        let fresh = tokens
            .expires_at
            .is_none_or(|at| OffsetDateTime::now_utc() + EXPIRY_MARGIN < at);
        if let (Some(access), true) = (&tokens.access, fresh) {
            return Ok((access.clone(), tokens.generation));
        }
        self.observed_refresh(&mut tokens, what).await
    }

    /// [`Self::refresh`], its outcome told to the observer. A call that finds no OAuth2 refresh
    /// configured is not a refresh, so the observer hears nothing of it.
    async fn observed_refresh(
        &self,
        tokens: &mut Tokens,
        what: &str,
    ) -> Result<(SecretString, u64), TokenError> {
        let result = self.refresh(tokens, what).await;
        let outcome = match &result {
            _ if self.credentials.is_none() => return result,
            Ok(_) => {
                tokens.failures = 0;
                RefreshOutcome::Refreshed {
                    refresh_expires_in: tokens.refresh_expires_in.take(),
                }
            }
            Err(error) => {
                tokens.failures = tokens.failures.saturating_add(1);
                RefreshOutcome::Failed {
                    error: error.clone(),
                    consecutive: tokens.failures,
                }
            }
        };
        if let Some(observer) = &self.observer {
            observer.refreshed(&self.owner, &outcome);
        }
        result
    }

    /// After a 401 with the token of `generation`: refreshes, unless another call already did.
    pub async fn refresh_after(
        &self,
        generation: u64,
        what: &str,
    ) -> Result<SecretString, TokenError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.generation != generation
            && let Some(access) = &tokens.access
        {
            return Ok(access.clone());
        }
        self.observed_refresh(&mut tokens, what)
            .await
            .map(|(t, _)| t)
    }

    /// Trades the refresh token for a new access token: one at a time in this process (the
    /// caller holds the tokens' lock) and across replicas (a transaction-scoped advisory lock on
    /// the owner), so no two refreshes race and burn each other's rotated refresh token. A
    /// replica that finds a fresher token kept by another adopts it instead of refreshing.
    async fn refresh(
        &self,
        tokens: &mut Tokens,
        what: &str,
    ) -> Result<(SecretString, u64), TokenError> {
        let Some(credentials) = &self.credentials else {
            return Err(TokenError::Permanent(format!(
                "{what}: the access token was refused or expired and no OAuth2 refresh is configured"
            )));
        };
        let database = |e: &dyn std::fmt::Display| TokenError::Transient {
            reason: format!("{what}: database unavailable: {e}"),
            retry_after: None,
        };
        let mut db = self.pool.get().await.map_err(|e| database(&e))?;
        let tx = db.transaction().await.map_err(|e| database(&e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("switchyard.{}.{}", self.table.table, self.owner)],
        )
        .await
        .map_err(|e| database(&e))?;
        let kept = tx
            .query_opt(&self.select_sql(), &[&self.owner])
            .await
            .map_err(|e| database(&e))?
            .map(kept);
        if let Some(Kept {
            refresh,
            access: Some(access),
            expires_at: Some(at),
        }) = &kept
            && OffsetDateTime::now_utc() + EXPIRY_MARGIN < *at
            && tokens
                .access
                .as_ref()
                .is_none_or(|ours| ours.expose_secret() != access.expose_secret())
        {
            // Another replica refreshed a moment ago: use its token.
            tokens.access = Some(access.clone());
            tokens.expires_at = Some(*at);
            tokens.refresh = refresh.clone().or(tokens.refresh.take());
            tokens.generation += 1;
            tokens.unsaved = false;
            return Ok((access.clone(), tokens.generation));
        }
        // The kept refresh token is the newest, unless this process could not store its own.
        let current = match (tokens.unsaved, kept.and_then(|k| k.refresh)) {
            (false, Some(refresh)) => refresh,
            _ => tokens
                .refresh
                .clone()
                .unwrap_or_else(|| credentials.initial_refresh.clone()),
        };
        let grant = match self.exchange(credentials, &current, what).await {
            Err(TokenError::Permanent(reason))
                if current.expose_secret() != credentials.initial_refresh.expose_secret() =>
            {
                tracing::warn!(owner = %self.owner, "kept refresh token refused; trying the one from the environment");
                self.exchange(credentials, &credentials.initial_refresh, what)
                    .await
                    .map_err(|_| TokenError::Permanent(reason))?
            }
            other => other?,
        };
        let access = SecretString::from(grant.access_token);
        tokens.access = Some(access.clone());
        tokens.expires_at = grant
            .expires_in
            .map(|s| OffsetDateTime::now_utc() + Duration::from_secs(s));
        tokens.refresh = Some(grant.refresh_token.map_or(current, SecretString::from));
        tokens.refresh_expires_in = grant.x_refresh_token_expires_in.map(Duration::from_secs);
        tokens.generation += 1;
        let stored = async {
            tx.execute(&self.upsert_sql(), &params(&self.owner, tokens).as_refs())
                .await?;
            tx.commit().await
        }
        .await;
        // The vendor already rotated the token: keep it in memory whatever the database says,
        // and store it at the next chance.
        tokens.unsaved = stored.is_err();
        if let Err(error) = stored {
            tracing::warn!(owner = %self.owner, %error, "rotated OAuth2 tokens not stored yet; will retry");
        }
        tracing::info!(owner = %self.owner, "access token refreshed");
        Ok((access, tokens.generation))
    }

    /// One refresh-token grant.
    async fn exchange(
        &self,
        credentials: &Credentials,
        refresh: &SecretString,
        what: &str,
    ) -> Result<Grant, TokenError> {
        let form_auth = self.client_auth == ClientAuth::Form;
        // Built apart: the serializer is not `Send`, so it must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh.expose_secret());
            if form_auth {
                form.append_pair("client_id", credentials.client_id.expose_secret())
                    .append_pair("client_secret", credentials.client_secret.expose_secret());
            }
            form.finish()
        };
        let mut request = self
            .http
            .post(&self.token_url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        if !form_auth {
            request = request.basic_auth(
                credentials.client_id.expose_secret(),
                Some(credentials.client_secret.expose_secret()),
            );
        }
        let what = format!("{what}: token refresh");
        let response = request.body(body).send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            TokenError::Transient {
                reason: format!("{what}: {kind}"),
                retry_after: None,
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return response.json::<Grant>().await.map_err(|_| {
                TokenError::Permanent(format!("{what}: the token endpoint answered no token"))
            });
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::retry::parse_retry_after);
        // Only the error code: token endpoints' bodies may echo what was sent.
        let code = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_owned))
            .filter(|c| c.len() < 64 && c.bytes().all(|b| b.is_ascii_graphic()))
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        if status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Err(TokenError::Transient {
                reason: format!("{what}: {status}{code} from the token endpoint"),
                retry_after,
            })
        } else {
            Err(TokenError::Permanent(format!(
                "{what} refused: {status}{code}; re-authorise the connection and set a new refresh token"
            )))
        }
    }

    /// Stores tokens a refresh could not store; a failure leaves them marked for the next call.
    async fn save(&self, tokens: &mut Tokens) {
        let result = async {
            let db = self.pool.get().await.map_err(|e| e.to_string())?;
            db.execute(&self.upsert_sql(), &params(&self.owner, tokens).as_refs())
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(_) => tokens.unsaved = false,
            Err(error) => {
                tracing::warn!(owner = %self.owner, %error, "rotated OAuth2 tokens not stored yet; will retry")
            }
        }
    }

    async fn load(&self) -> Result<Option<Kept>, String> {
        let db = self.pool.get().await.map_err(|e| e.to_string())?;
        let row = db
            .query_opt(&self.select_sql(), &[&self.owner])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.map(kept))
    }

    fn select_sql(&self) -> String {
        let TokenTable { table, key_column } = self.table;
        format!(
            "SELECT refresh_token, access_token, expires_at FROM {table} WHERE {key_column} = $1"
        )
    }

    fn upsert_sql(&self) -> String {
        let TokenTable { table, key_column } = self.table;
        format!(
            "INSERT INTO {table} ({key_column}, refresh_token, access_token, expires_at, updated_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT ({key_column}) DO UPDATE SET refresh_token = EXCLUDED.refresh_token,
               access_token = EXCLUDED.access_token, expires_at = EXCLUDED.expires_at, updated_at = now()"
        )
    }
}

/// The upsert's parameters (the only place tokens leave their `SecretString`).
struct Params {
    owner: String,
    refresh: Option<String>,
    access: Option<String>,
    expires_at: Option<OffsetDateTime>,
}

impl Params {
    fn as_refs(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 4] {
        [&self.owner, &self.refresh, &self.access, &self.expires_at]
    }
}

fn params(owner: &str, tokens: &Tokens) -> Params {
    Params {
        owner: owner.to_owned(),
        refresh: tokens
            .refresh
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        access: tokens.access.as_ref().map(|t| t.expose_secret().to_owned()),
        expires_at: tokens.expires_at,
    }
}

/// Tokens kept in the database.
struct Kept {
    refresh: Option<SecretString>,
    access: Option<SecretString>,
    expires_at: Option<OffsetDateTime>,
}

fn kept(row: tokio_postgres::Row) -> Kept {
    Kept {
        refresh: row.get::<_, Option<String>>(0).map(SecretString::from),
        access: row.get::<_, Option<String>>(1).map(SecretString::from),
        expires_at: row.get(2),
    }
}
