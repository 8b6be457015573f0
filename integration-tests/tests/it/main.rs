//! The whole pipeline — ingest → transform → dedupe → deliver → monitor — end to end against real
//! NATS JetStream and PostgreSQL, with a recording sink as the destination.

mod admin;
mod alerts;
mod connectors;
mod dashboard;
mod db_roles;
mod dedupe;
mod delivery;
mod dlq;
mod hydration;
mod identity;
mod isolation;
mod mailchimp;
mod merge;
mod monitoring;
mod permissions;
mod records;
mod reliability;
mod resilience;
mod review;
mod scenarios;
mod tracing;
mod transform;
