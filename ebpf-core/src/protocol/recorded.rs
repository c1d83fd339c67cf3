//! Recorded connections for the key/value parsers' tests
//! (`tests/fixtures/{redis,memcached}/`): `NAME.req.bin` (client bytes),
//! `NAME.resp.bin` or `.resp.bin.gz` (server bytes) and `NAME.segments`
//! (`> N` / `< N` per recorded read/write), turned into the chunks the
//! syscall probes would produce: from either side, split, and cut to a
//! capture size.

use std::io::Read;

use crate::protocol::{Direction, Role};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, so any split of a
/// recorded segment keeps it recognisable as `ts / SEG_NS - 1`.
pub(crate) const SEG_NS: u64 = 1_000_000;

/// One chunk as the probes would report it.
pub(crate) type Step<'a> = (Direction, u64, &'a [u8], u64);

pub(crate) struct Fixture {
    pub req: Vec<u8>,
    pub resp: Vec<u8>,
    pub segments: Vec<(bool, usize)>,
}

impl Fixture {
    /// `tests/fixtures/<dir>/<name>.*`; the replies may be gzipped
    /// (`.resp.bin.gz`).
    pub(crate) fn load(dir: &str, name: &str) -> Fixture {
        let read =
            |suffix: &str| std::fs::read(format!("{}/tests/fixtures/{dir}/{name}{suffix}", env!("CARGO_MANIFEST_DIR")));
        let req = read(".req.bin").unwrap_or_else(|e| panic!("{name}.req.bin: {e}"));
        let resp = match read(".resp.bin") {
            Ok(b) => b,
            Err(_) => {
                let gz = read(".resp.bin.gz").unwrap_or_else(|e| panic!("{name}.resp.bin(.gz): {e}"));
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("gunzip");
                out
            }
        };
        let text = String::from_utf8(read(".segments").expect("segments")).expect("utf-8 segments");
        let segments = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (dir, n) = l.split_once(' ').unwrap_or_else(|| panic!("{name}: bad segment line {l:?}"));
                (dir == ">", n.parse().unwrap_or_else(|_| panic!("{name}: bad segment line {l:?}")))
            })
            .collect::<Vec<_>>();
        let (rq, rs): (usize, usize) =
            segments.iter().fold((0, 0), |(a, b), &(r, n)| if r { (a + n, b) } else { (a, b + n) });
        assert_eq!((rq, rs), (req.len(), resp.len()), "{name}: segments do not add up to the recorded bytes");
        Fixture { req, resp, segments }
    }

    /// One chunk per recorded segment, each cut to `capture` bytes, and
    /// within each segment split at the offsets `split(segment, len)` gives.
    pub(crate) fn steps(
        &self,
        role: Role,
        capture: usize,
        split: &dyn Fn(usize, usize) -> Vec<usize>,
    ) -> Vec<Step<'_>> {
        let (mut rq, mut rs) = (0, 0);
        let mut out = Vec::new();
        for (seg, &(request, n)) in self.segments.iter().enumerate() {
            let bytes = if request { &self.req[rq..rq + n] } else { &self.resp[rs..rs + n] };
            if request {
                rq += n;
            } else {
                rs += n;
            }
            let dir = match (role, request) {
                (Role::Server, true) | (Role::Client, false) => Direction::Ingress,
                _ => Direction::Egress,
            };
            let mut cuts = split(seg, n);
            cuts.retain(|&c| c > 0 && c < n);
            cuts.sort_unstable();
            cuts.dedup();
            let mut start = 0;
            for (piece, end) in cuts.into_iter().chain([n]).enumerate() {
                let syscall = &bytes[start..end];
                let seen = &syscall[..syscall.len().min(capture)];
                out.push((dir, SEG_NS * (seg as u64 + 1) + piece as u64, seen, syscall.len() as u64));
                start = end;
            }
        }
        out
    }
}

pub(crate) fn whole(_: usize, _: usize) -> Vec<usize> {
    Vec::new()
}
