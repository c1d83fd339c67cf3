//! HTTP/2 behind the protocol seam: its recogniser, its switch in the
//! configuration, and `Http2Connection`, the `Parser` the connection tracker
//! feeds. It decides on the first chunk how the connection started (from
//! its start, or joined mid-way), asks for a wide capture (frames are small
//! and many to a syscall), and counts what the decoder could not follow
//! into the receiver's counters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::frame::{self, FrameHeader, HEADER_LEN};
use super::{looks_like_frames, looks_like_preface, H2cUpgrade, Http2Parser, Http2Stats, Http2Stream};
use crate::protocol::{Capture, Chunk, Hint, Parser, ParserContext, Progress, Recognition, Record, Role};
use crate::stats::Stats;

/// `protocols.http2` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Parse this protocol. Off, its connections are muted after their first
    /// payload, like any stream no enabled protocol recognises.
    pub enabled: bool,
    /// Describe gRPC calls (HTTP/2 streams of content-type
    /// `application/grpc`) as RPCs: `rpc.*` spans and
    /// `rpc.{server,client}.call.duration`. Off, they are HTTP/2 requests
    /// like any other.
    pub grpc: bool,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self { enabled: true, grpc: true }
    }
}

/// The registry's recogniser. The client preface (or its first 4 bytes or
/// more) is certain: prior-knowledge h2c, and TLS with ALPN `h2` (the
/// plaintext starts the same). A chunk that is a whole number of plausible
/// frames is plausible: a server whose SETTINGS come before it reads the
/// preface (Go's), or a connection joined mid-way.
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    if looks_like_preface(hint.data) {
        Recognition::Certain
    } else if looks_like_frames(hint.data, hint.total_len) {
        Recognition::Plausible
    } else {
        Recognition::No
    }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(Http2Connection { parser: None, role: ctx.role, streams: Vec::new(), stats: ctx.stats.clone() })
}

/// One connection's HTTP/2 parser, as the seam sees it.
#[derive(Debug)]
pub struct Http2Connection {
    /// Chosen by the first chunk (`start`), or given (`after_upgrade`).
    parser: Option<Http2Parser>,
    /// From the kernel, when it saw the connection open.
    role: Option<Role>,
    /// Streams the last call completed, before they become records.
    streams: Vec<Http2Stream>,
    stats: Arc<Stats>,
}

impl Http2Connection {
    /// The HTTP/2 that follows an HTTP/1.1 `Upgrade: h2c` answered 101: the
    /// upgrade request is stream 1.
    pub fn after_upgrade(upgrade: H2cUpgrade, stats: Arc<Stats>) -> Self {
        Self { parser: Some(Http2Parser::after_upgrade(upgrade)), role: None, streams: Vec::new(), stats }
    }

    /// How the connection started, from its first chunk: the preface, or a
    /// server's SETTINGS on a connection the kernel saw open, start it;
    /// anything else (frames) joins it mid-way, where fields that refer to
    /// HPACK entries from before stay unknown.
    fn start(&self, chunk: &Chunk<'_>) -> Http2Parser {
        if looks_like_preface(chunk.data) || (self.role.is_some() && starts_with_settings(chunk.data)) {
            Http2Parser::new()
        } else {
            Http2Parser::midway()
        }
    }

    fn records(&mut self, out: &mut Vec<Record>) {
        out.extend(self.streams.drain(..).map(Record::Http2));
    }

    /// What the decoder could not follow since the last call, into the
    /// receiver's counters.
    fn count(&mut self, gap_dropped: usize) {
        let Some(parser) = self.parser.as_mut() else { return };
        let mut s = parser.take_stats();
        // Streams dropped by lost events count as lost requests (the tracker
        // adds them), not here as well.
        s.streams_lost = s.streams_lost.saturating_sub(gap_dropped as u64);
        if s == Http2Stats::default() {
            return;
        }
        for (counter, n) in [
            (&self.stats.http2_framing_lost, s.framing_lost),
            (&self.stats.http2_resyncs, s.resyncs),
            (&self.stats.http2_chunks_skipped, s.chunks_skipped),
            (&self.stats.http2_streams_lost, s.streams_lost),
            (&self.stats.http2_hpack_errors, s.hpack_errors),
        ] {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }
}

/// The chunk starts with a SETTINGS frame (not an acknowledgement).
fn starts_with_settings(data: &[u8]) -> bool {
    let Some(hdr) = data.get(..HEADER_LEN).and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()) else {
        return false;
    };
    let h = FrameHeader::parse(hdr);
    h.kind == frame::SETTINGS && !h.has(frame::ACK)
}

impl Parser for Http2Connection {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if self.parser.is_none() {
            if chunk.data.is_empty() {
                return Progress::Continue;
            }
            self.parser = Some(self.start(chunk));
        }
        let Some(parser) = self.parser.as_mut() else { return Progress::Continue };
        let result = parser.feed(chunk, &mut self.streams);
        self.records(out);
        self.count(0);
        if result.is_err() {
            Progress::Failed
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, _out: &mut Vec<Record>) -> usize {
        let Some(parser) = self.parser.as_mut() else { return 0 };
        let dropped = parser.gap();
        self.count(dropped);
        dropped
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        let Some(parser) = self.parser.as_mut() else { return };
        parser.close(ts_ns, &mut self.streams);
        self.records(out);
        self.count(0);
    }

    /// Servers write many frames per syscall (a response's HEADERS and DATA,
    /// several streams' at once): past the capture, a frame header is lost
    /// and the streams in flight with it.
    fn capture(&self) -> Capture {
        Capture::Wide
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Direction;

    fn hint(data: &[u8]) -> Hint<'_> {
        Hint::of(data, Direction::Egress)
    }

    #[test]
    fn recognition() {
        assert_eq!(recognise(&hint(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), Recognition::Certain);
        assert_eq!(recognise(&hint(b"PRI ")), Recognition::Certain);
        // A SETTINGS frame, then a WINDOW_UPDATE: whole frames.
        let frames = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x0f\x00\x01";
        assert_eq!(recognise(&hint(frames)), Recognition::Plausible);
        // Cut anywhere, or followed by bytes past the capture, they are not.
        assert_eq!(recognise(&Hint { total_len: frames.len() as u64 + 3, ..hint(frames) }), Recognition::No);
        assert_eq!(recognise(&hint(&frames[..20])), Recognition::No);
        for other in
            [&b"GET / HTTP/1.1\r\n"[..], b"HTTP/1.1 200 OK\r\n", b"*1\r\n$4\r\nPING\r\n", b"\x16\x03\x01\x02\x00"]
        {
            assert_eq!(recognise(&hint(other)), Recognition::No, "{:?}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn asks_for_a_wide_capture() {
        assert_eq!(new_parser(&ParserContext::default()).capture(), Capture::Wide);
    }
}
