//! Loading in layers: the YAML file, then the environment (overrides and the secrets each
//! process needs, by [`Scope`]), then validation.

use std::path::Path;

use secrecy::SecretString;

use super::secrets::SecretRef;
use super::*;

/// Which secrets a process needs. Each service resolves only its own, so a deployed transform
/// never holds the webhook secrets, and only deliver holds the destinations' credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: `switchyard up`, `check-config`, tests.
    All,
    Ingest,
    Transform,
    Dedupe,
    Deliver,
    Monitor,
}

impl Scope {
    pub(super) fn sources(self) -> bool {
        matches!(self, Self::All | Self::Ingest)
    }
    pub(super) fn destinations(self) -> bool {
        matches!(self, Self::All | Self::Deliver)
    }
    pub(super) fn admin_tokens(self) -> bool {
        matches!(self, Self::All | Self::Monitor)
    }
    /// The sources' API credentials: transform reads thin events' records with them.
    pub(super) fn source_apis(self) -> bool {
        matches!(self, Self::All | Self::Transform)
    }
}

impl Config {
    /// Loads the file at `path`, then applies the environment and validates.
    pub fn load(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        Self::load_for(path, env, Scope::All)
    }

    /// Like [`Config::load`], resolving only the secrets `scope` needs.
    pub fn load_for(path: &Path, env: &Env, scope: Scope) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_for(&text, env, scope)
    }

    /// Parses YAML text, then applies the environment and validates.
    pub fn from_yaml(text: &str, env: &Env) -> Result<Self, ConfigError> {
        Self::from_yaml_for(text, env, Scope::All)
    }

    /// Like [`Config::from_yaml`], resolving only the secrets `scope` needs.
    pub fn from_yaml_for(text: &str, env: &Env, scope: Scope) -> Result<Self, ConfigError> {
        // A value of the wrong type or form is refused with its path (`destinations[0].url`).
        let mut config: Config = serde_path_to_error::deserialize(
            serde_yaml_ng::Deserializer::from_str(text),
        )
        .map_err(|e| {
            // The YAML error may name a shorter path of its own: the full one leads.
            let (path, inner) = (e.path().to_string(), e.inner().to_string());
            let message = inner
                .split_once(": ")
                .filter(|(prefix, _)| path.starts_with(prefix))
                .map_or(inner.as_str(), |(_, rest)| rest);
            ConfigError::Parse(format!("{path}: {message}"))
        })?;
        config.apply_env(env, scope)?;
        Ok(config)
    }

    pub(super) fn apply_env(&mut self, env: &Env, scope: Scope) -> Result<(), ConfigError> {
        if let Some(url) = env.get("NATS_URL") {
            self.nats.url = url.to_owned();
        }
        if let Some(user) = env.get("NATS_USER") {
            self.nats.user = Some(user.to_owned());
        }
        let mut problems = Vec::new();
        // The password never comes from the file: `NATS_PASSWORD`, else the variable it names.
        match (env.get("NATS_PASSWORD"), self.nats.password_env.as_mut()) {
            (Some(password), _) => {
                self.nats.password_env = Some(SecretRef::resolved("NATS_PASSWORD", password));
            }
            (None, Some(secret)) => secret.resolve(env, "nats.password_env", true, &mut problems),
            (None, None) => {}
        }
        if let Some(url) = env.get("DATABASE_URL") {
            self.database.url = SecretString::from(url.to_owned());
        }
        if let Some(prefix) = env.get("SWITCHYARD_PREFIX") {
            self.prefix = prefix.to_owned();
        }
        if let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.telemetry.otlp_endpoint = Some(endpoint.to_owned());
        }
        if let Some(filter) = env.get("RUST_LOG") {
            self.telemetry.log_filter = filter.to_owned();
        }
        // Each process resolves only the secrets its scope needs.
        let mut resolve = |secret: &mut Option<SecretRef>, field: String, wanted: bool| {
            if let Some(secret) = secret.as_mut() {
                secret.resolve(env, &field, wanted, &mut problems);
            }
        };
        for (i, source) in self.sources.iter_mut().enumerate() {
            if let Some(api) = source.api.as_mut() {
                for (name, secret) in [
                    ("client_id_env", &mut api.client_id_env),
                    ("client_secret_env", &mut api.client_secret_env),
                    ("refresh_token_env", &mut api.refresh_token_env),
                    ("access_token_env", &mut api.access_token_env),
                ] {
                    resolve(
                        secret,
                        format!("sources[{i}].api.{name}"),
                        scope.source_apis(),
                    );
                }
            }
        }
        for (i, dest) in self.destinations.iter_mut().enumerate() {
            for (name, secret) in [
                ("secret_env", &mut dest.secret_env),
                ("client_id_env", &mut dest.client_id_env),
                ("client_secret_env", &mut dest.client_secret_env),
                ("refresh_token_env", &mut dest.refresh_token_env),
            ] {
                resolve(
                    secret,
                    format!("destinations[{i}].{name}"),
                    scope.destinations(),
                );
            }
        }
        for (field, secret) in [
            ("monitor.read_token_env", &mut self.monitor.read_token_env),
            (
                "monitor.operator_token_env",
                &mut self.monitor.operator_token_env,
            ),
            (
                "monitor.alerts.webhook_secret_env",
                &mut self.monitor.alerts.webhook_secret_env,
            ),
        ] {
            resolve(secret, field.to_owned(), scope.admin_tokens());
        }
        for (i, source) in self.sources.iter_mut().enumerate() {
            for (j, secret) in source.secret_env.iter_mut().enumerate() {
                secret.resolve(
                    env,
                    &format!("sources[{i}].secret_env[{j}]"),
                    scope.sources(),
                    &mut problems,
                );
            }
        }
        if let Some(var) = &self.monitor.alerts.webhook_url_env {
            // Monitor sends alerts; other services only need to know one is configured.
            match env.get(var) {
                Some(url) => self.monitor.alerts.webhook_url = Some(url.to_owned()),
                None if scope.admin_tokens() => problems.push(format!(
                    "monitor.alerts.webhook_url_env: environment variable {var} is not set"
                )),
                None => {}
            }
        }
        problems.extend(self.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}
