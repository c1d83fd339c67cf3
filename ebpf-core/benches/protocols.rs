//! Userspace throughput of each protocol parser on recorded traffic, one
//! core: the recorded connections of `tests/fixtures/<dir>/` (`NAME.req.bin`,
//! `NAME.resp.bin` or `.resp.bin.gz`, `NAME.segments`: one chunk per
//! recorded read/write), replayed from the client's side through the seam
//! as the connection tracker drives it (recognition by every enabled
//! protocol on the first chunk, then `Parser::feed`, `close`), and again
//! with every record described, its metrics recorded and its span encoded.
//! `cargo bench -p ebpf-core --bench protocols` (or `make bench`); `ROUNDS`
//! replays per measurement (default: ~0.1 s each), `RECORDING=substring`
//! measures only the matching recordings.
//!
//! Prints per recording: chunks (events) and records per replay, parse-only
//! M events/s and MB/s, then M events/s with description, metrics and
//! encoding, and allocations per record on that path; medians of 3
//! measurements, the two paths alternated. A protocol joins with one line
//! in `RECORDED`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpf_core::clock::WallClock;
use ebpf_core::metrics::{Metrics, MetricsConfig};
use ebpf_core::process::ProcessIdentity;
use ebpf_core::protocol::{Chunk, ConnFacts, Describer, Direction, Hint, Protocols, Record, Role, Verdict};
use ebpf_core::spans::{write_span, IdGenerator};
use ebpf_core::stats::Stats;
use ebpf_core::Config;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The recordings measured, by protocol: (registry name, fixture folder
/// under `tests/fixtures/`, the server's port as the recogniser's hint).
/// One line each, so that protocols added side by side do not touch the same line.
#[rustfmt::skip]
const RECORDED: &[(&str, &str, u16)] = &[
    ("http1", "http1", 80),
    ("postgresql", "postgres", 5432),
    ("mysql", "mysql", 3306),
    ("redis", "redis", 6379),
    ("memcached", "memcached", 11211),
    ("kafka", "kafka", 9092),
    ("mongodb", "mongodb", 27017),
    ("mqtt", "mqtt", 1883),
];

/// Measurements per recording and path; the median is printed.
const REPEATS: usize = 3;

/// One recorded read or write, as the client's probes report it.
struct Piece {
    direction: Direction,
    data: Vec<u8>,
    /// Larger than `data` where nothing was captured (`< sendfile N`).
    total_len: u64,
}

/// One recorded connection as the client's chunks.
fn load(dir: &Path, name: &str) -> Vec<Piece> {
    let read = |suffix: &str| std::fs::read(dir.join(format!("{name}{suffix}")));
    let req = read(".req.bin").expect("recording");
    let resp = read(".resp.bin").unwrap_or_else(|_| {
        let mut out = Vec::new();
        let gz = read(".resp.bin.gz").expect("recording");
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("gunzip");
        out
    });
    let (mut r, mut s) = (0, 0);
    let mut out = Vec::new();
    for line in String::from_utf8(read(".segments").expect("recording")).expect("utf-8").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let piece = match words[..] {
            [">", n] => {
                let n: usize = n.parse().expect("segment length");
                r += n;
                Piece { direction: Direction::Egress, data: req[r - n..r].to_vec(), total_len: n as u64 }
            }
            ["<", n] => {
                let n: usize = n.parse().expect("segment length");
                s += n;
                Piece { direction: Direction::Ingress, data: resp[s - n..s].to_vec(), total_len: n as u64 }
            }
            ["<", "sendfile", n] => {
                Piece { direction: Direction::Ingress, data: Vec::new(), total_len: n.parse().expect("segment length") }
            }
            [] => continue,
            _ => panic!("{name}: bad segment line {line:?}"),
        };
        out.push(piece);
    }
    out
}

/// One replay of a connection to `port`, if `protocol` recognises it; each
/// record goes to `sink`. Returns the records.
fn replay(protocols: &Protocols, protocol: &str, port: u16, chunks: &[Piece], sink: &mut dyn FnMut(&Record)) -> usize {
    let hint = Hint {
        data: &chunks[0].data,
        total_len: chunks[0].total_len,
        direction: chunks[0].direction,
        role: Some(Role::Client),
        local_port: Some(50_000),
        peer_port: Some(port),
        tls: false,
    };
    // A first chunk too short to tell is not waited on: recordings start with a whole message.
    let Verdict::Parse(p, mut parser) = protocols.recognise(&hint, false) else { return 0 };
    if p.name != protocol {
        return 0;
    }
    let mut records = Vec::new();
    let mut n = 0;
    for (i, piece) in chunks.iter().enumerate() {
        let chunk =
            Chunk { ts_ns: i as u64 * 1000, direction: piece.direction, data: &piece.data, total_len: piece.total_len };
        let progress = parser.feed(&chunk, &mut records);
        n += records.len();
        records.drain(..).for_each(|r| sink(&r));
        if progress != ebpf_core::protocol::Progress::Continue {
            break;
        }
    }
    parser.close(chunks.len() as u64 * 1000, &mut records);
    n += records.len();
    records.drain(..).for_each(|r| sink(&r));
    n
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let rounds: Option<usize> = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok());
    let only = std::env::var("RECORDING").unwrap_or_default();
    let config = Config::default();
    let stats = Arc::new(Stats::default());
    let protocols = Protocols::new(&config.protocols, None);
    let process = Arc::new(ProcessIdentity::from_comm(1, "bench"));
    println!(
        "{:<40} {:>7} {:>8} {:>12} {:>8} {:>13} {:>14}",
        "recording", "events", "records", "parse Mev/s", "MB/s", "+spans Mev/s", "allocs/record"
    );
    for &(protocol, folder, port) in RECORDED {
        let facts = ConnFacts {
            endpoints: Some(ebpf_core::conntrack::Endpoints {
                local: ("10.0.0.2".parse().unwrap(), 50_000),
                peer: ("10.0.0.1".parse().unwrap(), port),
            }),
            tls: false,
        };
        let dir = root.join(folder);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixture folder")
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".segments").map(str::to_string))
            .filter(|name| format!("{protocol}/{name}").contains(&only))
            .collect();
        names.sort();
        for name in names {
            let chunks = load(&dir, &name);
            let bytes: usize = chunks.iter().map(|p| p.data.len()).sum();
            let replay = |sink: &mut dyn FnMut(&Record)| replay(&protocols, protocol, port, &chunks, sink);
            let per_replay = replay(&mut |_| {});
            if per_replay == 0 {
                // TLS, a failed login, the compressed MySQL protocol: no operations to measure.
                continue;
            }
            let rounds = rounds.unwrap_or_else(|| {
                let t = Instant::now();
                let mut n = 0;
                while t.elapsed() < Duration::from_millis(30) {
                    replay(&mut |_| {});
                    n += 1;
                }
                (n * 3).max(1)
            });
            let mut describer = Describer::new(&config, stats.clone());
            let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
            let (clock, mut ids) = (WallClock::from_offset_ns(0), IdGenerator::with_seed(1));
            let (mut buf, mut scratch) = (Vec::with_capacity(1 << 20), String::new());
            let mut spans = |r: &Record| {
                describer.describe(r, &facts, &mut |op| {
                    metrics.observe(&process, op);
                    write_span(op, &clock, &mut ids, &mut buf, &mut scratch);
                });
                if buf.len() > 1 << 19 {
                    buf.clear();
                }
            };
            // Warm the metric series and buffers, as a long-lived connection has.
            replay(&mut spans);
            let (mut parse, mut full, mut allocs) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                let start = Instant::now();
                for _ in 0..rounds {
                    replay(&mut |_| {});
                }
                parse.push(start.elapsed().as_secs_f64());
                let before = ALLOCS.load(Relaxed);
                let start = Instant::now();
                for _ in 0..rounds {
                    replay(&mut spans);
                }
                full.push(start.elapsed().as_secs_f64());
                allocs.push((ALLOCS.load(Relaxed) - before) as f64);
            }
            let (parse, full, allocs) = (median(parse), median(full), median(allocs));
            let events = (rounds * chunks.len()) as f64;
            println!(
                "{:<40} {:>7} {:>8} {:>12.2} {:>8.0} {:>13.2} {:>14.1}",
                format!("{protocol}/{name}"),
                chunks.len(),
                per_replay,
                events / parse / 1e6,
                (rounds * bytes) as f64 / parse / 1e6,
                events / full / 1e6,
                allocs / (rounds * per_replay) as f64,
            );
        }
    }
}
