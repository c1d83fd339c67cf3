//! Replays of recorded HTTP/2 traffic (tests/fixtures/http2) and hand-built
//! frame sequences through `Http2Parser`.

mod edge_cases;
mod fixtures;
mod frames;
mod midway;
mod seam;
mod telemetry;

use super::{Http2Parser, Http2Stats, Http2Stream};
use crate::protocol::{Chunk, Direction, Role};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, so that any split of a
/// recorded segment keeps it recognisable as `ts / SEG_NS - 1`.
pub(super) const SEG_NS: u64 = 1_000_000;

/// One recorded read/write: client bytes (`to_server`) or server bytes;
/// `data` is what was captured of `total_len`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub to_server: bool,
    pub data: &'static [u8],
    pub total_len: u64,
}

pub(super) fn segments(name: &str, req: &'static [u8], resp: &'static [u8], lines: &str) -> Vec<Segment> {
    let (mut req_at, mut resp_at) = (0usize, 0usize);
    let mut out = Vec::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let seg = match words[..] {
            [">", n] => {
                let n: usize = n.parse().unwrap();
                req_at += n;
                Segment { to_server: true, data: &req[req_at - n..req_at], total_len: n as u64 }
            }
            ["<", n] => {
                let n: usize = n.parse().unwrap();
                resp_at += n;
                Segment { to_server: false, data: &resp[resp_at - n..resp_at], total_len: n as u64 }
            }
            ["<", "sendfile", n] => Segment { to_server: false, data: &[], total_len: n.parse().unwrap() },
            _ => panic!("{name}: bad segment line {line:?}"),
        };
        out.push(seg);
    }
    assert_eq!((req_at, resp_at), (req.len(), resp.len()), "{name}: segments do not cover the recording");
    out
}

/// How to play a recording.
#[derive(Debug, Clone, Copy)]
pub(super) struct Play {
    /// The traced process: the server (requests are Ingress) or the client.
    pub role: Role,
    /// Cut every segment into pieces of at most this many bytes.
    pub piece: Option<usize>,
    /// Capture only this prefix of each piece (the rest is counted).
    pub capture: Option<usize>,
    /// Close the connection after the last segment.
    pub close: bool,
}

impl Play {
    pub(super) const SERVER: Play = Play { role: Role::Server, piece: None, capture: None, close: true };
}

pub(super) fn direction(role: Role, to_server: bool) -> Direction {
    match (role, to_server) {
        (Role::Server, true) | (Role::Client, false) => Direction::Ingress,
        (Role::Server, false) | (Role::Client, true) => Direction::Egress,
    }
}

/// Feeds `segs[from..]` (segment indexes keep their recorded timestamps).
pub(super) fn play_from(
    parser: &mut Http2Parser,
    segs: &[Segment],
    from: usize,
    how: Play,
) -> (Vec<Http2Stream>, Http2Stats) {
    let mut out = Vec::new();
    for (i, seg) in segs.iter().enumerate().skip(from) {
        let base = SEG_NS * (i as u64 + 1);
        let pieces: Vec<(&[u8], u64)> = match how.piece {
            // Only captured segments can be cut (an uncaptured sendfile stays whole).
            Some(n) if seg.data.len() as u64 == seg.total_len && !seg.data.is_empty() => {
                seg.data.chunks(n).map(|c| (c, c.len() as u64)).collect()
            }
            _ => vec![(seg.data, seg.total_len)],
        };
        for (k, (data, total_len)) in pieces.into_iter().enumerate() {
            let data = match how.capture {
                Some(c) => &data[..data.len().min(c)],
                None => data,
            };
            let chunk =
                Chunk { ts_ns: base + k as u64, direction: direction(how.role, seg.to_server), data, total_len };
            parser.feed(&chunk, &mut out).unwrap_or_else(|e| panic!("segment {i}: {e}"));
        }
    }
    if how.close {
        parser.close(SEG_NS * (segs.len() as u64 + 1), &mut out);
    }
    (out, parser.take_stats())
}

pub(super) fn play(segs: &[Segment], how: Play) -> (Vec<Http2Stream>, Http2Stats) {
    play_from(&mut Http2Parser::new(), segs, 0, how)
}

/// The recorded segment a timestamp came from.
pub(super) fn seg_of(ts: u64) -> usize {
    (ts / SEG_NS - 1) as usize
}
