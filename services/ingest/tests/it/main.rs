//! Ingest, run for real in-process against real NATS JetStream: what it accepts, what it refuses
//! and how it answers when the bus is gone.

mod backpressure;
mod harness;
mod limits;
mod vendors;
mod webhooks;
