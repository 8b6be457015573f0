//! Switchyard's contracts: the protobuf messages every service exchanges over NATS, the canonical
//! business objects, and the admin gRPC API.

/// Version 1 of the contracts (`switchyard.v1`).
#[allow(
    missing_docs,
    clippy::all,
    unused_qualifications,
    missing_debug_implementations
)]
pub mod v1 {
    tonic::include_proto!("switchyard.v1");
}

pub use prost::Message;
pub use prost_types::Timestamp;

/// Converts a wall-clock time to a protobuf timestamp.
pub fn timestamp(at: std::time::SystemTime) -> Timestamp {
    Timestamp::from(at)
}

pub mod contracts;
