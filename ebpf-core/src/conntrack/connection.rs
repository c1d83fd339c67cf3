//! One tracked connection: a TCP or UDP socket, as the kernel names it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::events::Transport;
use crate::process::ProcessIdentity;
use crate::protocol::{Direction, Parser, Protocol, Role};

/// Both ends of a connection, from the traced process's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub local: (IpAddr, u16),
    pub peer: (IpAddr, u16),
}

/// What the byte stream turned out to be.
#[derive(Debug)]
pub enum StreamState {
    /// No payload seen yet.
    Unclassified,
    /// Its first chunks, while a recogniser needs more to tell.
    Sniffing(Box<Sniff>),
    /// Recognised as `Protocol`, followed by its parser.
    Parsed(&'static Protocol, Box<dyn Parser>),
    /// Not a protocol we parse (or parsing failed): further bytes are ignored.
    Ignored,
    /// Switched to TLS: socket bytes are ignored, and this parser follows
    /// the plaintext when the TLS probes deliver it (`Parser::over_tls`).
    AwaitingTls(&'static Protocol, Box<dyn Parser>),
}

/// The first chunks of a stream, all of one direction and fully
/// captured, kept until a recogniser can tell what they are.
#[derive(Debug)]
pub struct Sniff {
    pub direction: Direction,
    /// The chunks' bytes, joined.
    pub bytes: Vec<u8>,
    /// Each chunk's timestamp and length in `bytes`.
    pub chunks: Vec<(u64, usize)>,
}

#[derive(Debug)]
pub struct Connection {
    pub conn_id: u64,
    /// The process the kernel announced it for (a fork or exec that uses
    /// it later is announced again): its exit or exec ends the connection.
    pub tgid: u32,
    pub process: Arc<ProcessIdentity>,
    pub transport: Transport,
    /// None when the kernel's open event was lost (counted as a kernel drop).
    pub endpoints: Option<Endpoints>,
    /// The traced process's side, when the kernel saw the socket appear
    /// (accept or connect); a hint for recognising the protocol.
    pub role: Option<Role>,
    pub stream: StreamState,
    pub last_seen_ns: u64,
    /// TLS: its plaintext comes from the OpenSSL probes; bytes seen at the
    /// socket are ciphertext and ignored.
    pub tls: bool,
    /// The data event number expected next (`DataEvent::seq`).
    pub next_seq: Option<u32>,
}
