//! Every stream, subject and consumer name, in one place, always passed through the prefix.

use std::fmt;

/// The five streams of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Untouched webhooks from ingest: `<prefix>.raw.<source>.<event>`.
    Raw,
    /// Validated canonical objects: `<prefix>.canonical.<object>.<source>`.
    Canonical,
    /// Golden-record changes: `<prefix>.golden.<object>`.
    Golden,
    /// Dead letters: `<prefix>.dlq.<stage>.<flow or source>`.
    Dlq,
    /// Delivery results, notices and alerts for monitor: `<prefix>.ops.>`.
    Ops,
}

impl StreamKind {
    /// All streams, in pipeline order.
    pub const ALL: [StreamKind; 5] = [
        Self::Raw,
        Self::Canonical,
        Self::Golden,
        Self::Dlq,
        Self::Ops,
    ];

    fn token(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Canonical => "canonical",
            Self::Golden => "golden",
            Self::Dlq => "dlq",
            Self::Ops => "ops",
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// Builds names under one prefix, so tenants and tests sharing a NATS server never collide.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (already validated by the config: a-z, 0-9, '-', '_').
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stream name, e.g. `SWITCHYARD_RAW`. Stream names may not contain dots.
    pub fn stream(&self, kind: StreamKind) -> String {
        format!("{}_{}", self.prefix, kind.token()).to_uppercase()
    }

    /// The subjects a stream captures, e.g. `switchyard.raw.>`.
    pub fn stream_subjects(&self, kind: StreamKind) -> String {
        format!("{}.{}.>", self.prefix, kind.token())
    }

    /// `<prefix>.raw.<source>.<event type>`.
    pub fn raw(&self, source: &str, event_type: &str) -> String {
        format!(
            "{}.raw.{}.{}",
            self.prefix,
            token(source),
            subject_tail(event_type)
        )
    }

    /// `<prefix>.canonical.<object>.<source>`.
    pub fn canonical(&self, object: &str, source: &str) -> String {
        format!(
            "{}.canonical.{}.{}",
            self.prefix,
            token(object),
            token(source)
        )
    }

    /// `<prefix>.golden.<object>`.
    pub fn golden(&self, object: &str) -> String {
        format!("{}.golden.{}", self.prefix, token(object))
    }

    /// `<prefix>.dlq.<stage>.<key>`.
    pub fn dlq(&self, stage: &str, key: &str) -> String {
        format!("{}.dlq.{}.{}", self.prefix, token(stage), token(key))
    }

    /// `<prefix>.ops.delivery.<flow>`: what deliver did for a flow.
    pub fn ops_delivery(&self, flow: &str) -> String {
        format!("{}.ops.delivery.{}", self.prefix, token(flow))
    }

    /// `<prefix>.ops.conflict.<object>`: keys of one record that point at different golden records.
    pub fn ops_conflict(&self, object: &str) -> String {
        format!("{}.ops.conflict.{}", self.prefix, token(object))
    }

    /// `<prefix>.ops.conflict.<object>.destination`: a destination holds several records that
    /// could be this golden record (deliver's look-up before a create), so nothing was written.
    pub fn ops_destination_conflict(&self, object: &str) -> String {
        format!("{}.destination", self.ops_conflict(object))
    }

    /// `<prefix>.ops.conflict.<object>.command`: what dedupe did with an operator's identity
    /// command (merge, un-merge). Below `ops.conflict.`, which dedupe may already publish to.
    pub fn identity_command_result(&self, object: &str) -> String {
        format!("{}.command", self.ops_conflict(object))
    }

    /// `<prefix>.canonical.command.admin`: operator identity commands (merge, un-merge). They
    /// ride the canonical stream so they are durable, ordered with the events they affect, and
    /// need no extra permission (monitor may publish there, dedupe consumes it all).
    pub fn identity_command(&self) -> String {
        format!("{}.canonical.command.admin", self.prefix)
    }

    /// `<prefix>.canonical.crosswalk.<destination>`: ids a destination gave golden records, from
    /// deliver to dedupe's crosswalk. On the canonical stream so dedupe applies them durably, in
    /// order with the events they concern.
    pub fn crosswalk_link(&self, destination: &str) -> String {
        format!("{}.canonical.crosswalk.{}", self.prefix, token(destination))
    }

    /// Whether `subject` is a crosswalk link (any destination).
    pub fn is_crosswalk_link(&self, subject: &str) -> bool {
        subject
            .strip_prefix(&format!("{}.canonical.crosswalk.", self.prefix))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
    }

    /// `<prefix>.ops.command.<service>`: operator commands to a service (e.g. resume a paused
    /// flow). On the OPS stream, which monitor may already publish to; the service consumes it
    /// with its own durable consumer.
    pub fn ops_command(&self, service: &str) -> String {
        format!("{}.ops.command.{}", self.prefix, token(service))
    }

    /// `<prefix>.ops.status.<key>`: deliver's reports on a flow's or a destination's health
    /// (paused, resumed, credentials failing or expiring), for monitor's alerts.
    pub fn ops_status(&self, key: &str) -> String {
        format!("{}.ops.status.{}", self.prefix, token(key))
    }

    /// `<prefix>.ops.drift.<source>`: schema-drift notices from transform.
    pub fn ops_drift(&self, source: &str) -> String {
        format!("{}.ops.drift.{}", self.prefix, token(source))
    }

    /// A durable consumer's name, e.g. `switchyard-deliver-contacts`.
    pub fn consumer(&self, name: &str) -> String {
        format!("{}-{}", self.prefix, token(name))
    }
}

/// One subject token: anything outside `[A-Za-z0-9_-]` becomes `_`.
fn token(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
}

/// A dotted tail such as `contact.created`; each part is cleaned like a token, empty parts dropped.
fn subject_tail(raw: &str) -> String {
    let parts: Vec<String> = raw
        .split('.')
        .filter(|p| !p.is_empty())
        .map(token)
        .collect();
    if parts.is_empty() {
        "unknown".to_owned()
    } else {
        parts.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_clean_wildcards() {
        let n = Names::new("t-42");
        assert_eq!(n.stream(StreamKind::Raw), "T-42_RAW");
        assert_eq!(n.stream_subjects(StreamKind::Golden), "t-42.golden.>");
        assert_eq!(
            n.raw("demo", "contact.created"),
            "t-42.raw.demo.contact.created"
        );
        assert_eq!(n.raw("demo", "a.*.>..b c"), "t-42.raw.demo.a._._.b_c");
        assert_eq!(n.raw("demo", ""), "t-42.raw.demo.unknown");
        assert_eq!(n.dlq("deliver", "my.flow"), "t-42.dlq.deliver.my_flow");
        assert_eq!(n.ops_conflict("contact"), "t-42.ops.conflict.contact");
        assert_eq!(
            n.ops_destination_conflict("contact"),
            "t-42.ops.conflict.contact.destination"
        );
        assert_eq!(n.identity_command(), "t-42.canonical.command.admin");
        assert_eq!(n.ops_command("deliver"), "t-42.ops.command.deliver");
        assert_eq!(n.ops_status("a.b"), "t-42.ops.status.a_b");
        assert_eq!(
            n.identity_command_result("contact"),
            "t-42.ops.conflict.contact.command"
        );
    }
}
