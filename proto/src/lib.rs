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

/// The encoded `FileDescriptorSet` of every contract (imports included), for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchyard_descriptor.bin"));

pub use prost::Message;
pub use prost_types::Timestamp;

/// Converts a wall-clock time to a protobuf timestamp.
pub fn timestamp(at: std::time::SystemTime) -> Timestamp {
    Timestamp::from(at)
}

pub mod contracts;
pub mod fields;
pub mod json;
pub mod phone;
pub mod redact;

#[cfg(test)]
mod tests {
    use prost::Message as _;

    #[test]
    fn the_descriptor_set_describes_the_admin_api_and_its_imports() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("an encoded FileDescriptorSet");
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert!(
            names.contains(&"google/protobuf/timestamp.proto"),
            "{names:?}"
        );
        let admin = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .find(|s| s.name() == "Admin")
            .expect("the Admin service");
        assert!(admin.method.iter().any(|m| m.name() == "ListAlerts"));
    }
}
