//! Span assembly: completed exchanges become OTLP spans named and attributed
//! per the OpenTelemetry semantic conventions.

mod attributes;
mod http;
mod ids;

pub use attributes::{int_attr, str_attr};
pub use http::http_span;
pub use ids::IdGenerator;
