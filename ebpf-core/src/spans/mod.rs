//! Span assembly: completed exchanges become OTLP spans named and attributed
//! per the OpenTelemetry semantic conventions.

mod attributes;
mod http;
pub mod http_common;
mod ids;

pub use attributes::{int_attr, str_attr};
pub use http::http_span;
pub use http_common::path_of;
pub use ids::IdGenerator;
