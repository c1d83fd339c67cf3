//! Ring-buffer records, decoded from bytes into typed events.

mod decode;
pub mod recording;

pub use decode::{decode, ConnOpen, DataEvent, DecodeError, Event, Header, Transport};
