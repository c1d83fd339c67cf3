//! Connection state: which process owns each tracked socket, where it goes,
//! and the protocol parser following its byte stream.

mod connection;
mod overlap;
mod table;

pub use connection::{Connection, Endpoints, StreamState};
pub use table::{looks_like_tls_record, ConnTracker, Exchange, Mute, Widen};
