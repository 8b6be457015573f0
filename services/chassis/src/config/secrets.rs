//! Secrets by reference: the file names the environment variable that holds a secret, never the
//! secret itself; loading resolves it, for the processes that need it (`Scope`), into a value
//! that is never printed.

use secrecy::SecretString;
use serde::Deserialize;

use super::Env;

/// A secret named by its environment variable (`secret_env: SINK_SECRET`), with its value once
/// loading has resolved it.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct SecretRef {
    var: String,
    value: Option<SecretString>,
}

impl From<String> for SecretRef {
    fn from(var: String) -> Self {
        Self { var, value: None }
    }
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.value.is_some() {
            "resolved"
        } else {
            "unresolved"
        };
        write!(f, "SecretRef({}, {state})", self.var)
    }
}

impl SecretRef {
    /// A secret already known, under the variable it came from (`NATS_PASSWORD`).
    pub fn resolved(var: &str, value: &str) -> Self {
        Self {
            var: var.to_owned(),
            value: Some(SecretString::from(value.to_owned())),
        }
    }

    /// The environment variable that holds the secret.
    pub fn var(&self) -> &str {
        &self.var
    }

    /// The secret, when loading resolved it for this process.
    pub fn value(&self) -> Option<&SecretString> {
        self.value.as_ref()
    }

    /// Reads the variable when `wanted` (this process needs the secret), else forgets any value;
    /// a variable that is not set is a problem named by `field`.
    pub(super) fn resolve(
        &mut self,
        env: &Env,
        field: &str,
        wanted: bool,
        problems: &mut Vec<String>,
    ) {
        self.value = None;
        if !wanted {
            return;
        }
        match env.get(&self.var) {
            Some(value) => self.value = Some(SecretString::from(value.to_owned())),
            None => problems.push(format!(
                "{field}: environment variable {} is not set",
                self.var
            )),
        }
    }
}

/// The resolved value of an optional secret.
pub(super) fn value(secret: &Option<SecretRef>) -> Option<&SecretString> {
    secret.as_ref().and_then(SecretRef::value)
}
