//! Receives held back until the send they overlapped is seen.
//!
//! A data event is stamped when its call completes. A client whose send is
//! still in the kernel (a blocked upload, or a writer preempted after
//! loopback delivered its bytes) while another of its threads reads the
//! reply has the reply's event first: without this, the parser meets a
//! response to a request it has not seen. The kernel marks such a receive
//! (`OE_DATA_F_OVERLAP`: the socket's `write_seq` moved past the last send
//! event) and the send it overlapped; the receive, and what the connection
//! receives after it, wait here for that send, which then goes first.
//! Bounded in time and size: a send that never comes (written by a call
//! nothing traces) leaves them in arrival order.

use crate::events::{DataEvent, Header};
use crate::protocol::Direction;

/// Longest a receive waits for its send: a blocked upload can take
/// hundreds of milliseconds to go through.
pub const HOLD_MAX_NS: u64 = 2_000_000_000;
/// Most receives held for one connection (a reply streamed during a long
/// upload): past it they all go, in arrival order.
pub const HOLD_MAX_EVENTS: usize = 64;

/// One receive, copied out of the ring.
#[derive(Debug)]
pub struct HeldEvent {
    pub hdr: Header,
    pub direction: Direction,
    pub total_len: u32,
    pub payload: Vec<u8>,
    pub tls: bool,
}

impl HeldEvent {
    pub fn new(hdr: &Header, data: &DataEvent<'_>) -> Self {
        Self {
            hdr: *hdr,
            direction: data.direction,
            total_len: data.total_len,
            payload: data.payload.to_vec(),
            tls: data.tls,
        }
    }

    /// As an event again; its number was checked when it came.
    pub fn event(&self) -> DataEvent<'_> {
        DataEvent {
            direction: self.direction,
            total_len: self.total_len,
            payload: &self.payload,
            seq: None,
            tls: self.tls,
            overlap: false,
        }
    }
}

/// A connection's receives waiting for a send.
#[derive(Debug)]
pub struct Held {
    pub events: Vec<HeldEvent>,
}

impl Held {
    pub fn new(first: HeldEvent) -> Self {
        Self { events: vec![first] }
    }

    /// The first held receive's stamp: the send it overlapped goes just before it.
    pub fn since_ns(&self) -> u64 {
        self.events.first().map_or(0, |e| e.hdr.ts_ns)
    }

    pub fn is_full(&self) -> bool {
        self.events.len() >= HOLD_MAX_EVENTS
    }
}
