//! Span assembly: completed exchanges become OTLP spans named and attributed
//! per the OpenTelemetry semantic conventions.

mod attributes;
mod genai;
mod http;
pub mod http_common;
mod ids;

pub use attributes::{bool_attr, double_attr, int_attr, str_array_attr, str_attr};
pub use genai::{first_chunk_ns, genai_error_type, genai_server, genai_span};
pub use http::{http_span, write_http_span};
pub use http_common::path_of;
pub use ids::IdGenerator;
