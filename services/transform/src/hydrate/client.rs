//! One source's API client: a token bucket matched to the vendor's quota, and OAuth2 — the access
//! token cached until shortly before it expires, refreshed then and once on a 401, and the
//! rotated refresh token (Intuit and Xero issue a new one on every refresh) kept in PostgreSQL.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use switchyard_chassis::config::{SourceApiConfig, SourceKind};
use switchyard_chassis::deadpool_postgres::Pool;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::HydrateError;
use super::target::{Target, unwrap};

/// Refresh this long before the vendor says the access token expires, so no read races expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// The longest a read waits for a token of the bucket; past that the event is retried later
/// rather than held beyond the consumer's ack wait.
const RATE_WAIT: Duration = Duration::from_secs(5);

/// A configured source API.
#[derive(Debug)]
pub struct Client {
    source: String,
    kind: SourceKind,
    base: reqwest::Url,
    token_url: String,
    http: reqwest::Client,
    limiter: governor::DefaultDirectRateLimiter,
    oauth: Option<OAuth>,
    tokens: Mutex<Tokens>,
    pool: Pool,
}

/// The app's OAuth2 credentials.
#[derive(Debug)]
struct OAuth {
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
}

/// What a token endpoint answers (RFC 6749 §5.1).
#[derive(Debug, serde::Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
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
        let oauth = match (
            &config.client_id,
            &config.client_secret,
            &config.refresh_token,
        ) {
            (Some(id), Some(secret), Some(refresh)) => Some(OAuth {
                client_id: id.clone(),
                client_secret: secret.clone(),
                initial_refresh: refresh.clone(),
            }),
            _ => None,
        };
        if oauth.is_none() && config.access_token.is_none() {
            return Err(
                "no credentials resolved (transform reads them from the environment)".to_owned(),
            );
        }
        let mut tokens = Tokens {
            access: config.access_token.clone(),
            refresh: oauth.as_ref().map(|o| o.initial_refresh.clone()),
            ..Tokens::default()
        };
        if oauth.is_some()
            && let Some(kept) = load(&pool, source).await?
        {
            // A kept refresh token is newer than the environment's: it was rotated since.
            tokens.refresh = kept.refresh.or(tokens.refresh);
            if kept.access.is_some() && kept.expires_at.is_some() {
                tokens.access = kept.access;
                tokens.expires_at = kept.expires_at;
            }
        }
        Ok(Self {
            source: source.to_owned(),
            kind,
            base,
            token_url: config.token_url(kind).to_owned(),
            http,
            limiter: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
            oauth,
            tokens: Mutex::new(tokens),
            pool,
        })
    }

    /// Reads the record `target` names: with a fresh token, once more after a refresh on a 401.
    #[tracing::instrument(
        skip_all,
        name = "vendor read",
        fields(otel.kind = "client", otel.name = "vendor read", source = %self.source, read = %target.describe)
    )]
    pub async fn fetch(&self, target: &Target) -> Result<Value, HydrateError> {
        let (token, generation) = self.access_token(target).await?;
        let response = self.send(target, &token).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED && self.oauth.is_some() {
            tracing::info!("access token refused; refreshing once");
            let token = self.refresh_after(generation, target).await?;
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

    /// A usable access token and the generation it belongs to; refreshed first when it is
    /// missing or about to expire.
    async fn access_token(&self, target: &Target) -> Result<(SecretString, u64), HydrateError> {
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
        self.refresh(&mut tokens, target).await
    }

    /// After a 401 with the token of `generation`: refreshes, unless another read already did.
    async fn refresh_after(
        &self,
        generation: u64,
        target: &Target,
    ) -> Result<SecretString, HydrateError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.generation != generation
            && let Some(access) = &tokens.access
        {
            return Ok(access.clone());
        }
        self.refresh(&mut tokens, target).await.map(|(t, _)| t)
    }

    /// Trades the refresh token for a new access token: one at a time in this process (the
    /// caller holds the tokens' lock) and across replicas (a transaction-scoped advisory lock on
    /// the source), so no two refreshes race and burn each other's rotated refresh token. A
    /// replica that finds a fresher token kept by another adopts it instead of refreshing.
    async fn refresh(
        &self,
        tokens: &mut Tokens,
        target: &Target,
    ) -> Result<(SecretString, u64), HydrateError> {
        let Some(oauth) = &self.oauth else {
            return Err(HydrateError::Permanent(format!(
                "hydrate {}: the access token expired and no OAuth2 refresh is configured",
                target.describe
            )));
        };
        let mut db = self.pool.get().await.map_err(super::database)?;
        let tx = db.transaction().await.map_err(super::database)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("switchyard.oauth_tokens.{}", self.source)],
        )
        .await
        .map_err(super::database)?;
        let kept = tx
            .query_opt(SELECT_TOKENS, &[&self.source])
            .await
            .map_err(super::database)?
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
                .unwrap_or_else(|| oauth.initial_refresh.clone()),
        };
        let grant = match self.exchange(oauth, &current, target).await {
            Err(HydrateError::Permanent(reason))
                if current.expose_secret() != oauth.initial_refresh.expose_secret() =>
            {
                tracing::warn!(source = %self.source, "kept refresh token refused; trying the one from the environment");
                self.exchange(oauth, &oauth.initial_refresh, target)
                    .await
                    .map_err(|_| HydrateError::Permanent(reason))?
            }
            other => other?,
        };
        let access = SecretString::from(grant.access_token);
        tokens.access = Some(access.clone());
        tokens.expires_at = grant
            .expires_in
            .map(|s| OffsetDateTime::now_utc() + Duration::from_secs(s));
        tokens.refresh = Some(grant.refresh_token.map_or(current, SecretString::from));
        tokens.generation += 1;
        let stored = async {
            tx.execute(UPSERT_TOKENS, &params(&self.source, tokens).as_refs())
                .await?;
            tx.commit().await
        }
        .await;
        // The vendor already rotated the token: keep it in memory whatever the database says,
        // and store it at the next chance.
        tokens.unsaved = stored.is_err();
        if let Err(error) = stored {
            tracing::warn!(source = %self.source, %error, "rotated OAuth2 tokens not stored yet; will retry");
        }
        tracing::info!(source = %self.source, "access token refreshed");
        Ok((access, tokens.generation))
    }

    /// One refresh-token grant. Intuit and Xero take the client credentials as HTTP Basic;
    /// HubSpot as form fields.
    async fn exchange(
        &self,
        oauth: &OAuth,
        refresh: &SecretString,
        target: &Target,
    ) -> Result<Grant, HydrateError> {
        let hubspot = self.kind == SourceKind::Hubspot;
        // Built apart: the serializer is not `Send`, so it must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh.expose_secret());
            if hubspot {
                form.append_pair("client_id", oauth.client_id.expose_secret())
                    .append_pair("client_secret", oauth.client_secret.expose_secret());
            }
            form.finish()
        };
        let mut request = self
            .http
            .post(&self.token_url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        if !hubspot {
            request = request.basic_auth(
                oauth.client_id.expose_secret(),
                Some(oauth.client_secret.expose_secret()),
            );
        }
        let what = format!("hydrate {}: token refresh", target.describe);
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&what, &e))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<Grant>().await.map_err(|_| {
                HydrateError::Permanent(format!("{what}: the token endpoint answered no token"))
            });
        }
        let retry_after = retry_after(&response);
        // Only the error code: token endpoints' bodies may echo what was sent.
        let code = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_owned))
            .filter(|c| c.len() < 64 && c.bytes().all(|b| b.is_ascii_graphic()))
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        if is_transient(status) {
            Err(HydrateError::Transient {
                reason: format!("{what}: {status}{code} from the token endpoint"),
                retry_after,
            })
        } else {
            Err(HydrateError::Permanent(format!(
                "{what} refused: {status}{code}; re-authorise the connection and set a new refresh token"
            )))
        }
    }

    /// Stores tokens a refresh could not store; a failure leaves them marked for the next read.
    async fn save(&self, tokens: &mut Tokens) {
        let result = async {
            let db = self.pool.get().await.map_err(|e| e.to_string())?;
            db.execute(UPSERT_TOKENS, &params(&self.source, tokens).as_refs())
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(_) => tokens.unsaved = false,
            Err(error) => {
                tracing::warn!(source = %self.source, %error, "rotated OAuth2 tokens not stored yet; will retry")
            }
        }
    }
}

const SELECT_TOKENS: &str =
    "SELECT refresh_token, access_token, expires_at FROM oauth_tokens WHERE source = $1";
const UPSERT_TOKENS: &str =
    "INSERT INTO oauth_tokens (source, refresh_token, access_token, expires_at, updated_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (source) DO UPDATE SET refresh_token = EXCLUDED.refresh_token,
       access_token = EXCLUDED.access_token, expires_at = EXCLUDED.expires_at, updated_at = now()";

/// The upsert's parameters (the only place tokens leave their `SecretString`).
struct Params {
    source: String,
    refresh: Option<String>,
    access: Option<String>,
    expires_at: Option<OffsetDateTime>,
}

impl Params {
    fn as_refs(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 4] {
        [&self.source, &self.refresh, &self.access, &self.expires_at]
    }
}

fn params(source: &str, tokens: &Tokens) -> Params {
    Params {
        source: source.to_owned(),
        refresh: tokens
            .refresh
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        access: tokens.access.as_ref().map(|t| t.expose_secret().to_owned()),
        expires_at: tokens.expires_at,
    }
}

/// Tokens kept in the database for a source.
struct Kept {
    refresh: Option<SecretString>,
    access: Option<SecretString>,
    expires_at: Option<OffsetDateTime>,
}

async fn load(pool: &Pool, source: &str) -> Result<Option<Kept>, String> {
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let row = db
        .query_opt(SELECT_TOKENS, &[&source])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.map(kept))
}

fn kept(row: tokio_postgres::Row) -> Kept {
    Kept {
        refresh: row.get::<_, Option<String>>(0).map(SecretString::from),
        access: row.get::<_, Option<String>>(1).map(SecretString::from),
        expires_at: row.get(2),
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
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
