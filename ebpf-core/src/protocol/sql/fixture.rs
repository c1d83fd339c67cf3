//! Recorded connections (`tests/fixtures/{postgres,mysql}/`) for the SQL
//! parsers' tests: `NAME.req.bin` (client bytes), `NAME.resp.bin` (server
//! bytes) and `NAME.segments` (`> N` / `< N` per recv, in order), turned
//! into the chunks the syscall probes would produce, from either side.

use crate::protocol::{Direction, Role};

/// One recorded segment: which side sent it and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub from_client: bool,
    pub bytes: Vec<u8>,
}

/// The segments of a recording, in order.
pub(crate) fn segments(req: &[u8], resp: &[u8], text: &str) -> Vec<Segment> {
    let (mut r, mut s) = (0usize, 0usize);
    let mut out = Vec::new();
    for line in text.lines() {
        let (dir, n) = line.split_once(' ').expect("segment line");
        let n: usize = n.trim().parse().expect("segment length");
        if dir == ">" {
            out.push(Segment { from_client: true, bytes: req[r..r + n].to_vec() });
            r += n;
        } else {
            out.push(Segment { from_client: false, bytes: resp[s..s + n].to_vec() });
            s += n;
        }
    }
    assert_eq!((r, s), (req.len(), resp.len()), "segments cover the recording");
    out
}

/// The direction a segment has when the traced process is `role`.
pub(crate) fn direction(seg: &Segment, role: Role) -> Direction {
    match (seg.from_client, role) {
        (true, Role::Client) | (false, Role::Server) => Direction::Egress,
        _ => Direction::Ingress,
    }
}

/// Loads `tests/fixtures/<dir>/<name>.*` at compile time.
macro_rules! recording {
    ($dir:literal, $name:literal) => {
        $crate::protocol::sql::fixture::segments(
            include_bytes!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".req.bin")),
            include_bytes!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".resp.bin")),
            include_str!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".segments")),
        )
    };
}
pub(crate) use recording;
