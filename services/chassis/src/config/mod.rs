//! One typed configuration, loaded in layers: defaults → YAML file → environment → validation.
//! One file per concern: the infrastructure (NATS, PostgreSQL, telemetry), each service's own
//! settings, sources, destinations, flows, loading with its secrets, and the checks that report
//! every problem at once with its field path.
//!
//! Library code never reads the process environment: callers pass an [`Env`] snapshot, so tests
//! can load a config with their own secrets and the binaries pass `std::env::vars()`.

mod destinations;
mod flows;
mod infra;
mod load;
mod monitor;
mod secrets;
mod services;
mod sources;
mod types;
mod validate;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use destinations::*;
pub use flows::*;
pub use infra::*;
pub use load::Scope;
pub use monitor::*;
pub use secrets::SecretRef;
pub use services::*;
pub use sources::*;
pub use types::HttpUrl;

/// Environment variables the loader looks at (a snapshot, see [`Env::from_process`]).
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The current process environment; call this only at the edges (main, tests).
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment made of the given pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid YAML for Switchyard: {0}")]
    Parse(String),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// The whole Switchyard configuration (one file for all five services).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prefix for every stream, subject and consumer name, so tenants and tests never collide.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub nats: NatsConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub transform: TransformConfig,
    #[serde(default)]
    pub dedupe: DedupeConfig,
    #[serde(default)]
    pub deliver: DeliverConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
}

fn default_prefix() -> String {
    "switchyard".to_owned()
}

impl Config {
    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The destination with this name.
    pub fn destination(&self, name: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests;
