//! Where a parser of a pipelined request/response protocol (HTTP/1, Redis,
//! memcached) stands on its connection, and how each direction's message
//! boundaries are known. The three follow a stream the same way (lost
//! framing past the capture, resynchronisation, lost events), so the
//! states mean the same in each and are defined once, with the way they
//! send a chunk to one side or the other; what moves a parser between the
//! states is its own.

use super::{Chunk, Direction, Role};

/// The connection, as far as the parser follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    /// Not the protocol (garbage before any message was framed), or framing
    /// lost beyond repair: nothing more can be trusted.
    Failed,
    /// The connection now carries something else (an HTTP upgrade, Redis's
    /// `MONITOR` or replication, memcached's `watch`).
    Switched,
    /// `close` was called.
    Closed,
    /// After lost events (or a desynchronisation): chunks are ignored until
    /// a request chunk starts a message.
    Lost,
}

/// How a direction's message boundaries are known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Sync {
    /// From the framing of each message.
    #[default]
    Framed,
    /// Bytes past the capture hid where the current message (or reply) ends:
    /// every chunk this way belongs to the lost stretch until the other
    /// direction starts a message.
    Unframed,
    /// After a loss: the next chunk this way must start a message (requests:
    /// when the parser allows it). One that does not fails HTTP/1; Redis
    /// and memcached start over as after lost events.
    Resync,
    /// After lost events: chunks this way are ignored until one starts a
    /// message.
    Skip,
}

/// A chunk as a side of the exchange gets it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    /// It travels the way requests do.
    pub request: bool,
    /// Bytes it moved past the capture.
    pub uncaptured: u64,
}

/// The side `chunk` belongs to; `None` when there is nothing to parse (no
/// bytes, or none captured before the role is known). The role is learnt
/// from the first chunk with captured bytes (`infer`), unless known.
pub(crate) fn side(
    role: &mut Option<Role>,
    chunk: &Chunk<'_>,
    infer: impl FnOnce(Direction, &[u8]) -> Role,
) -> Option<Side> {
    let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
    if chunk.data.is_empty() && uncaptured == 0 {
        return None;
    }
    let role = match *role {
        Some(role) => role,
        // Bytes we cannot see cannot tell us which way requests go.
        None if chunk.data.is_empty() => return None,
        None => *role.insert(infer(chunk.direction, chunk.data)),
    };
    Some(Side { request: chunk.direction == role.request_direction(), uncaptured })
}
