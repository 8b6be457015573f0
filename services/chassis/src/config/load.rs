//! Loading in layers: the YAML file, then the environment (overrides and the secrets each
//! process needs, by [`Scope`]), then validation.

use std::path::Path;

use secrecy::SecretString;

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
        let mut config: Config =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
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
        self.nats.password = match (env.get("NATS_PASSWORD"), &self.nats.password_env) {
            (Some(password), _) => Some(SecretString::from(password.to_owned())),
            (None, Some(var)) => match env.get(var) {
                Some(password) => Some(SecretString::from(password.to_owned())),
                None => {
                    problems.push(format!(
                        "nats.password_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
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
        for (i, source) in self.sources.iter_mut().enumerate() {
            source.secrets.clear();
            if let Some(api) = source.api.as_mut() {
                for (field, var, slot) in [
                    ("client_id_env", &api.client_id_env, &mut api.client_id),
                    (
                        "client_secret_env",
                        &api.client_secret_env,
                        &mut api.client_secret,
                    ),
                    (
                        "refresh_token_env",
                        &api.refresh_token_env,
                        &mut api.refresh_token,
                    ),
                    (
                        "access_token_env",
                        &api.access_token_env,
                        &mut api.access_token,
                    ),
                ] {
                    *slot = None;
                    let Some(var) = var.as_ref().filter(|_| scope.source_apis()) else {
                        continue;
                    };
                    match env.get(var) {
                        Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                        None => problems.push(format!(
                            "sources[{i}].api.{field}: environment variable {var} is not set"
                        )),
                    }
                }
            }
            if !scope.sources() {
                continue;
            }
            for (j, var) in source.secret_env.iter().enumerate() {
                match env.get(var) {
                    Some(value) => source.secrets.push(SecretString::from(value.to_owned())),
                    None => problems.push(format!(
                        "sources[{i}].secret_env[{j}]: environment variable {var} is not set"
                    )),
                }
            }
        }
        for (i, dest) in self.destinations.iter_mut().enumerate() {
            for (field, var, slot) in [
                ("secret_env", &dest.secret_env, &mut dest.secret),
                ("client_id_env", &dest.client_id_env, &mut dest.client_id),
                (
                    "client_secret_env",
                    &dest.client_secret_env,
                    &mut dest.client_secret,
                ),
                (
                    "refresh_token_env",
                    &dest.refresh_token_env,
                    &mut dest.refresh_token,
                ),
            ] {
                *slot = None;
                let Some(var) = var.as_ref().filter(|_| scope.destinations()) else {
                    continue;
                };
                match env.get(var) {
                    Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                    None => problems.push(format!(
                        "destinations[{i}].{field}: environment variable {var} is not set"
                    )),
                }
            }
        }
        for (field, var, slot) in [
            (
                "monitor.read_token_env",
                &self.monitor.read_token_env,
                &mut self.monitor.read_token,
            ),
            (
                "monitor.operator_token_env",
                &self.monitor.operator_token_env,
                &mut self.monitor.operator_token,
            ),
            (
                "monitor.alerts.webhook_secret_env",
                &self.monitor.alerts.webhook_secret_env,
                &mut self.monitor.alerts.webhook_secret,
            ),
        ] {
            if let Some(var) = var.as_ref().filter(|_| scope.admin_tokens()) {
                match env.get(var) {
                    Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                    None => {
                        problems.push(format!("{field}: environment variable {var} is not set"))
                    }
                }
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
