//! Span assembly: completed operations (`crate::protocol::Operation`)
//! become OTLP spans, whatever their protocol.

mod attributes;
mod encode;
mod ids;
mod sampling;

pub use attributes::{bool_attr, double_attr, int_attr, str_array_attr, str_attr};
pub use encode::{key_value, to_span, write_attr, write_span, write_span_with};
pub use ids::IdGenerator;
pub use sampling::{Decision, Sampler, SamplingConfig, SpanHead};
