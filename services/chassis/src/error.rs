//! The chassis error: everything that can stop a service from starting or running.

use std::net::SocketAddr;

/// A service failed to start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// An error with its causes, `outer: inner: …`. Some errors say little on their own: a pool's
/// "Error occurred while creating a new object: db error" hides that the database does not
/// exist, which only the causes say.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        // Wrappers often repeat their cause in their own message; say it once.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_named_once_each() {
        let io = std::io::Error::other("database \"nope\" does not exist");
        #[derive(Debug, thiserror::Error)]
        #[error("db error")]
        struct Outer(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("creating a connection: {0}")]
        struct Repeats(#[source] std::io::Error);
        assert_eq!(
            super::with_causes(&Outer(io)),
            "db error: database \"nope\" does not exist"
        );
        let io = std::io::Error::other("refused");
        assert_eq!(
            super::with_causes(&Repeats(io)),
            "creating a connection: refused"
        );
    }
}
