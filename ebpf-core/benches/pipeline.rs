//! Userspace pipeline throughput on recorded kernel events: decode →
//! connection state → HTTP parse → span assembly → OTLP encode, one core.
//! `cargo bench -p ebpf-core --bench pipeline` (or `make bench`).
//!
//! Input: tests/fixtures/events/python_curl.bin (real traffic, 8 connections,
//! 6 request/response pairs), replayed many times; each replay opens and closes
//! its connections again, so state is created and torn down as in production.
//! `BENCH_FIXTURE=file` replays another recording (`record_events` in the
//! configuration), 10 times by default: e.g. nginx under wrk, keep-alive
//! connections (each replay starts with a hole in every connection's event
//! numbering, which only drops the requests in flight).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use ebpf_core::events::recording::read_records;
use ebpf_core::pipeline::Processor;
use ebpf_core::stats::Stats;
use ebpf_core::{Batch, Config, Signal};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// Counts allocations so the run can report allocations per request.
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

/// What the batches held.
#[derive(Default)]
struct Tally {
    batches: usize,
    bytes: usize,
    spans: usize,
    points: usize,
    /// Allocations of the encoding check, not the pipeline's.
    check_allocs: u64,
}

impl Tally {
    fn add(&mut self, b: &Batch) {
        // The first batches: encoded directly, they must be the bytes prost
        // writes for what they decode to.
        if self.batches < 4 {
            let before = ALLOCS.load(Relaxed);
            let canonical = match b.signal {
                Signal::Traces => ExportTraceServiceRequest::decode(b.data.as_slice()).unwrap().encode_to_vec(),
                _ => ExportMetricsServiceRequest::decode(b.data.as_slice()).unwrap().encode_to_vec(),
            };
            assert!(canonical == b.data, "batch not in prost's encoding");
            drop(canonical);
            self.check_allocs += ALLOCS.load(Relaxed) - before;
        }
        self.batches += 1;
        self.bytes += b.data.len();
        match b.signal {
            Signal::Traces => self.spans += b.items,
            _ => self.points += b.items,
        }
    }
}

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/events/python_curl.bin");

fn main() {
    // BENCH_FIXTURE: another recording (`record_events`), e.g. nginx under wrk.
    let external = std::env::var("BENCH_FIXTURE").ok().map(|path| std::fs::read(path).expect("BENCH_FIXTURE"));
    let records: Vec<&[u8]> = read_records(external.as_deref().unwrap_or(FIXTURE)).collect();
    let default_rounds = if external.is_some() { 10 } else { 40_000 };
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_rounds);
    let stats = Arc::new(Stats::default());
    // BENCH_CONFIG: a JSON config to compare, e.g. '{"metrics":{"enabled":false}}'.
    let config = std::env::var("BENCH_CONFIG").map_or_else(|_| Ok(Config::default()), |c| Config::from_json(&c));
    let mut p = Processor::replay(&config.expect("BENCH_CONFIG"), stats.clone());
    let mut t = Tally::default();
    let now = Instant::now();
    // Warm up: caches, first allocations of every table.
    for r in &records {
        p.handle(r, now, &mut |_| {});
    }
    let allocs_before = ALLOCS.load(Relaxed);
    let start = Instant::now();
    for round in 0..rounds {
        for r in &records {
            p.handle(r, now, &mut |b| t.add(&b));
        }
        p.take_muted().for_each(drop);
        // What the worker's metrics interval does in production: export and
        // release series of processes that exited.
        if round % 1000 == 999 {
            p.flush(&mut |b| t.add(&b));
        }
    }
    p.flush(&mut |b| t.add(&b));
    let elapsed = start.elapsed();
    let allocs = ALLOCS.load(Relaxed) - allocs_before - t.check_allocs;
    let events = (rounds * records.len()) as f64;
    assert_eq!(stats.snapshot().parse_errors, 0);
    let Tally { batches, bytes, spans, points, .. } = t;
    let spans = spans as f64;
    println!(
        "pipeline: {events:.0} events, {spans:.0} spans in {:.3}s: {:.2} M events/s, {:.0} ns/event, \
         {:.1} allocations/span, {batches} batches ({points} metric points), {:.1} MiB OTLP",
        elapsed.as_secs_f64(),
        events / elapsed.as_secs_f64() / 1e6,
        elapsed.as_nanos() as f64 / events,
        allocs as f64 / spans,
        bytes as f64 / (1 << 20) as f64,
    );
}
