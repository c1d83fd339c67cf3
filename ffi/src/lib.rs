//! The C ABI of otel-ebpf: a host program (the Go collector receiver, or any C
//! program) creates an instance from a JSON config, starts it, and polls
//! batches of OTLP protobuf bytes.
//!
//! Conventions (after rustls-ffi):
//! - handles are opaque; C never dereferences them. They are registry ids, so a
//!   stale, freed or forged handle is detected and answered with an error code
//!   instead of undefined behaviour;
//! - every call returns an [`otel_ebpf_result`]; failures leave a readable
//!   message for [`otel_ebpf_last_error`] on the calling thread;
//! - `_free(NULL)` is allowed; outputs are trailing `*_out` parameters;
//! - no panic crosses the boundary: every body runs inside [`panic::guard`].

mod api;
mod error;
mod handles;
mod panic;

pub use api::*;
pub use error::{otel_ebpf_last_error, otel_ebpf_result};
