//! OTLP protobuf encoding of assembled telemetry.

mod resource;
mod traces;

pub use resource::{process_resource, HostInfo};
pub use traces::encode_traces;
