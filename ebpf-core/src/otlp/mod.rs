//! OTLP protobuf encoding of assembled telemetry.

mod resource;
mod traces;
pub mod wire;

pub use resource::{process_resource, write_process_resource, HostInfo};
pub use traces::{encode_traces, TracesEncoder};
