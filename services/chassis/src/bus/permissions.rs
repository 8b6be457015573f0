//! Least-privilege NATS permissions: for each service, exactly the subjects it publishes to and
//! subscribes to, derived from the same [`Names`] the services use. This is the one source of
//! truth; the Helm chart renders the same lists (`helm/switchyard/templates/_nats.tpl`), and
//! `scripts/helm-check.sh` compares its output with `helm/switchyard/ci/nats-permissions.json`,
//! which the unit test below keeps equal to what this module generates.
//!
//! What each service does on the bus (read from the services' code):
//! - every service declares the five streams at start-up (`STREAM.INFO`, then `STREAM.CREATE`
//!   when missing; never `STREAM.UPDATE`), so every replica can start first;
//! - a consuming service looks up or creates its durable consumer (`CONSUMER.INFO`,
//!   `CONSUMER.CREATE.<stream>.<durable>.<filter>`), pulls (`CONSUMER.MSG.NEXT`) and acks
//!   (`$JS.ACK.<stream>.<durable>.>`);
//! - replies (API answers, pulled messages, publish acks) arrive on the connection's own inbox,
//!   `_INBOX.<prefix>.<client name>.>` (see [`inbox_prefix`]), so no service can read another's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Names, StreamKind};

/// The five services, as NATS sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Ingest,
    Transform,
    Dedupe,
    Deliver,
    Monitor,
}

impl Service {
    /// All services, in pipeline order.
    pub const ALL: [Service; 5] = [
        Self::Ingest,
        Self::Transform,
        Self::Dedupe,
        Self::Deliver,
        Self::Monitor,
    ];

    /// The service's name (`ingest`, …), also its default NATS user name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Transform => "transform",
            Self::Dedupe => "dedupe",
            Self::Deliver => "deliver",
            Self::Monitor => "monitor",
        }
    }

    /// The NATS client name the service connects with (`Runtime::start` names it so).
    pub fn client_name(self) -> String {
        format!("switchyard-{}", self.as_str())
    }
}

/// The subjects one NATS user may publish to and subscribe to (allow lists; all else denied).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The inbox prefix of a connection named `client_name`: replies to it arrive below it, and only
/// its user may subscribe there (the default `_INBOX.>` would let any service read every reply,
/// pulled messages included).
pub fn inbox_prefix(prefix: &str, client_name: &str) -> String {
    format!("_INBOX.{prefix}.{client_name}")
}

/// What `service` needs under `prefix`; `flows` are the configured flow names (deliver has one
/// durable consumer per flow, and a permission cannot wildcard part of a consumer name).
pub fn for_service(service: Service, prefix: &str, flows: &[&str]) -> Permissions {
    let names = Names::new(prefix);
    let mut publish = Vec::new();
    // Every service declares every stream, so any replica of any service can start first.
    for kind in StreamKind::ALL {
        let stream = names.stream(kind);
        publish.push(format!("$JS.API.STREAM.INFO.{stream}"));
        publish.push(format!("$JS.API.STREAM.CREATE.{stream}"));
    }
    let consume = |publish: &mut Vec<String>, kind: StreamKind, name: &str| {
        let stream = names.stream(kind);
        let durable = names.consumer(name);
        publish.push(format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"));
        // async-nats appends the filter subject to the create subject (nats-server 2.9+).
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.{durable}"));
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.{durable}.>"));
        publish.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"));
        publish.push(format!("$JS.ACK.{stream}.{durable}.>"));
    };
    match service {
        Service::Ingest => {
            publish.push(names.stream_subjects(StreamKind::Raw));
            // Back-pressure: ingest reads how far each stage behind it lags (transform, dedupe,
            // and every flow's deliver consumer).
            publish.extend(stage_consumer_info(&names, flows));
        }
        Service::Transform => {
            consume(&mut publish, StreamKind::Raw, "transform");
            publish.push(names.stream_subjects(StreamKind::Canonical));
            publish.push(format!("{}.dlq.transform.>", names.prefix()));
            // Schema-drift notices for monitor.
            publish.push(format!("{}.ops.drift.>", names.prefix()));
        }
        Service::Dedupe => {
            consume(&mut publish, StreamKind::Canonical, "dedupe");
            publish.push(names.stream_subjects(StreamKind::Golden));
            publish.push(format!("{}.ops.conflict.>", names.prefix()));
            publish.push(format!("{}.dlq.dedupe.>", names.prefix()));
        }
        Service::Deliver => {
            for flow in flows {
                consume(&mut publish, StreamKind::Golden, &format!("deliver-{flow}"));
                publish.push(names.ops_delivery(flow));
                publish.push(names.dlq("deliver", flow));
            }
            // Operators' commands (resume a paused flow), from monitor on the OPS stream.
            consume(&mut publish, StreamKind::Ops, "deliver-commands");
            // Flow and destination status reports (paused, credentials failing) for monitor.
            publish.push(format!("{}.ops.status.>", names.prefix()));
            // The ids destinations gave golden records, for dedupe's crosswalk.
            publish.push(format!("{}.canonical.crosswalk.>", names.prefix()));
            // Several destination records for one golden record: a conflict for a person.
            publish.push(format!("{}.ops.conflict.*.destination", names.prefix()));
        }
        Service::Monitor => {
            consume(&mut publish, StreamKind::Ops, "monitor");
            publish.push(format!("{}.dlq.monitor.>", names.prefix()));
            // The admin API (operator role) reads dead letters and replays one to its original
            // subject, which may be on any stream a stage consumes.
            publish.push(format!(
                "$JS.API.STREAM.MSG.GET.{}",
                names.stream(StreamKind::Dlq)
            ));
            for kind in [
                StreamKind::Raw,
                StreamKind::Canonical,
                StreamKind::Golden,
                StreamKind::Ops,
            ] {
                publish.push(names.stream_subjects(kind));
            }
            // Every stage's consumer lag, for `/metrics`.
            publish.extend(stage_consumer_info(&names, flows));
        }
    }
    Permissions {
        publish,
        subscribe: vec![format!(
            "{}.>",
            inbox_prefix(prefix, &service.client_name())
        )],
    }
}

/// Reading the consumer of every stage behind ingest: transform, dedupe, each flow's deliver.
fn stage_consumer_info(names: &Names, flows: &[&str]) -> Vec<String> {
    let mut watched = vec![
        (StreamKind::Raw, "transform".to_owned()),
        (StreamKind::Canonical, "dedupe".to_owned()),
    ];
    watched.extend(
        flows
            .iter()
            .map(|flow| (StreamKind::Golden, format!("deliver-{flow}"))),
    );
    watched
        .into_iter()
        .map(|(kind, durable)| {
            format!(
                "$JS.API.CONSUMER.INFO.{}.{}",
                names.stream(kind),
                names.consumer(&durable)
            )
        })
        .collect()
}

/// Every service's permissions, keyed by service name.
pub fn all(prefix: &str, flows: &[&str]) -> BTreeMap<&'static str, Permissions> {
    Service::ALL
        .into_iter()
        .map(|s| (s.as_str(), for_service(s, prefix, flows)))
        .collect()
}

/// An `authorization { … }` block for a hand-run nats-server: one user per service with its
/// permissions. Passwords are written as `$VAR` references, which nats-server resolves from its
/// own environment, so the file holds no secret; `password_var` names the variable per service.
pub fn server_authorization(
    prefix: &str,
    flows: &[&str],
    password_var: impl Fn(Service) -> String,
) -> String {
    format!(
        "authorization {{\n  users = [\n{}  ]\n}}\n",
        server_users(prefix, flows, password_var)
    )
}

/// The entries of [`server_authorization`]'s `users` list, for a server that has other users too.
pub fn server_users(
    prefix: &str,
    flows: &[&str],
    password_var: impl Fn(Service) -> String,
) -> String {
    let mut out = String::new();
    for service in Service::ALL {
        let p = for_service(service, prefix, flows);
        out.push_str(&format!(
            "    {{\n      user: {:?}\n      password: ${}\n      permissions: {{\n        publish: {{ allow: {} }}\n        subscribe: {{ allow: {} }}\n      }}\n    }}\n",
            service.as_str(),
            password_var(service),
            quoted_list(&p.publish),
            quoted_list(&p.subscribe),
        ));
    }
    out
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[String], subject: &str) -> bool {
        patterns.iter().any(|p| matches(p, subject))
    }

    /// NATS subject matching: `*` is one token, `>` one or more trailing tokens.
    fn matches(pattern: &str, subject: &str) -> bool {
        let mut p = pattern.split('.');
        let mut s = subject.split('.');
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn each_service_gets_its_own_subjects_only() {
        let n = Names::new("p");
        let ingest = for_service(Service::Ingest, "p", &["f"]);
        assert!(allowed(&ingest.publish, &n.raw("demo", "contact.created")));
        assert!(!allowed(&ingest.publish, &n.golden("contact")));
        assert!(!allowed(&ingest.publish, &n.canonical("contact", "demo")));
        assert!(!allowed(&ingest.subscribe, "p.canonical.contact.demo"));
        assert!(!allowed(&ingest.subscribe, "_INBOX.p.switchyard-deliver.x"));
        assert!(allowed(&ingest.subscribe, "_INBOX.p.switchyard-ingest.x.1"));
        assert!(allowed(
            &ingest.publish,
            "$JS.API.CONSUMER.INFO.P_RAW.p-transform"
        ));
        assert!(!allowed(
            &ingest.publish,
            "$JS.API.CONSUMER.MSG.NEXT.P_RAW.p-transform"
        ));
        // Back-pressure reads every later stage's consumer, and nothing else of theirs.
        for info in [
            "$JS.API.CONSUMER.INFO.P_CANONICAL.p-dedupe",
            "$JS.API.CONSUMER.INFO.P_GOLDEN.p-deliver-f",
        ] {
            assert!(allowed(&ingest.publish, info), "{info}");
        }
        assert!(!allowed(
            &ingest.publish,
            "$JS.API.CONSUMER.INFO.P_OPS.p-monitor"
        ));
        assert!(!allowed(
            &ingest.publish,
            "$JS.API.CONSUMER.MSG.NEXT.P_GOLDEN.p-deliver-f"
        ));

        let transform = for_service(Service::Transform, "p", &["f"]);
        assert!(allowed(
            &transform.publish,
            "$JS.API.CONSUMER.CREATE.P_RAW.p-transform.p.raw.>"
        ));
        assert!(allowed(&transform.publish, &n.dlq("transform", "demo")));
        assert!(!allowed(&transform.publish, &n.dlq("deliver", "f")));
        assert!(!allowed(&transform.publish, &n.golden("contact")));
        assert!(allowed(&transform.publish, &n.ops_drift("demo")));
        assert!(!allowed(&transform.publish, &n.ops_delivery("f")));

        let dedupe = for_service(Service::Dedupe, "p", &["f"]);
        assert!(allowed(&dedupe.publish, &n.golden("contact")));
        assert!(allowed(&dedupe.publish, &n.ops_conflict("contact")));
        // Results of operators' merge commands need no permission of their own.
        assert!(allowed(
            &dedupe.publish,
            &n.identity_command_result("contact")
        ));
        assert!(!allowed(&dedupe.publish, &n.ops_delivery("f")));

        let deliver = for_service(Service::Deliver, "p", &["f", "g"]);
        for flow in ["f", "g"] {
            assert!(allowed(&deliver.publish, &n.ops_delivery(flow)));
            assert!(allowed(&deliver.publish, &n.dlq("deliver", flow)));
            assert!(allowed(
                &deliver.publish,
                &format!("$JS.ACK.P_GOLDEN.p-deliver-{flow}.1.2.3.4.5")
            ));
        }
        assert!(!allowed(&deliver.publish, &n.ops_delivery("h")));
        assert!(allowed(&deliver.publish, &n.ops_status("f")));
        assert!(allowed(
            &deliver.publish,
            "$JS.API.CONSUMER.MSG.NEXT.P_OPS.p-deliver-commands"
        ));
        assert!(!allowed(&deliver.publish, &n.ops_command("deliver")));
        assert!(!allowed(
            &deliver.publish,
            "$JS.API.CONSUMER.MSG.NEXT.P_OPS.p-monitor"
        ));
        assert!(!allowed(
            &deliver.publish,
            "$JS.ACK.P_RAW.p-transform.1.2.3.4.5"
        ));

        let monitor = for_service(Service::Monitor, "p", &["f"]);
        assert!(allowed(
            &monitor.publish,
            "$JS.API.CONSUMER.MSG.NEXT.P_OPS.p-monitor"
        ));
        assert!(allowed(&monitor.publish, "$JS.API.STREAM.MSG.GET.P_DLQ"));
        assert!(allowed(&monitor.publish, &n.raw("demo", "contact.created")));
        assert!(allowed(&monitor.publish, &n.identity_command()));
        assert!(allowed(&monitor.publish, &n.ops_command("deliver")));
        assert!(!allowed(&monitor.publish, &n.dlq("deliver", "f")));
        assert!(!allowed(
            &monitor.publish,
            "$JS.API.STREAM.MSG.DELETE.P_DLQ"
        ));

        // Nobody may touch stream configuration beyond declaring it, nor delete anything.
        for (_, p) in all("p", &["f"]) {
            assert!(!p.publish.iter().any(|s| s.contains("UPDATE")
                || s.contains("DELETE")
                || s.contains("PURGE")
                || s == ">"));
        }
    }

    #[test]
    fn the_chart_renders_the_same_lists() {
        // helm/switchyard/ci/full-values.yaml: prefix `switchyard`, these flows. helm-check.sh
        // compares the chart's rendering with the same file.
        let expected: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../helm/switchyard/ci/nats-permissions.json"
        ))
        .unwrap_or_else(|e| panic!("nats-permissions.json is not JSON: {e}"));
        let generated =
            serde_json::to_value(all("switchyard", &["contacts-to-sink", "contacts-to-crm"]))
                .unwrap_or_else(|e| panic!("permissions serialise: {e}"));
        assert_eq!(
            generated,
            expected,
            "regenerate helm/switchyard/ci/nats-permissions.json and update _nats.tpl:\n{}",
            serde_json::to_string_pretty(&generated).unwrap_or_default()
        );
    }

    #[test]
    fn the_server_block_names_every_user_without_secrets() {
        let block = server_authorization("p", &["f"], |s| {
            format!("NATS_{}_PASSWORD", s.as_str().to_uppercase())
        });
        for service in Service::ALL {
            assert!(
                block.contains(&format!("user: \"{}\"", service.as_str())),
                "{block}"
            );
        }
        assert!(block.contains("password: $NATS_INGEST_PASSWORD"), "{block}");
    }
}
