//! A minimal host for benchmarks: runs the receiver for N seconds, polls and
//! discards batches (as a collector hands them on), then prints its counters
//! as JSON. `bench_host SECONDS [CONFIG_JSON]`.
//!
//! Environment (used by bench/memory.py and bench/loss.py):
//! - `BENCH_HOST_PORT=N`: decode trace batches and count the spans whose
//!   `server.port` is N (`server_spans`, `client_spans` in the JSON).
//! - `BENCH_HOST_REPORT_MS=N`: also print the JSON line every N ms while running.

use std::time::{Duration, Instant};

use ebpf_core::{Batch, Instance, Poll, Signal};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

#[derive(Default)]
struct Tally {
    batches: u64,
    bytes: u64,
    server_spans: u64,
    client_spans: u64,
}

impl Tally {
    fn add(&mut self, b: &Batch, port: Option<i64>) {
        self.batches += 1;
        self.bytes += b.data.len() as u64;
        let (Some(port), Signal::Traces) = (port, b.signal) else {
            return;
        };
        let Ok(req) = ExportTraceServiceRequest::decode(b.data.as_slice()) else {
            return;
        };
        for span in req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
            let on_port = span.attributes.iter().any(|kv| {
                kv.key == "server.port"
                    && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::IntValue(p)) if *p == port)
            });
            if on_port && span.kind == SpanKind::Server as i32 {
                self.server_spans += 1;
            } else if on_port && span.kind == SpanKind::Client as i32 {
                self.client_spans += 1;
            }
        }
    }

    fn report(&self, inst: &Instance, last: bool) {
        let s = inst.stats();
        println!(
            r#"{{"final":{last},"batches":{},"bytes":{},"server_spans":{},"client_spans":{},"events_read":{},"events_lost":{},"decode_errors":{},"spans_exported":{},"batches_dropped":{},"spans_dropped":{},"parse_errors":{},"stream_gaps":{},"requests_lost":{},"connections":{},"processes":{}}}"#,
            self.batches,
            self.bytes,
            self.server_spans,
            self.client_spans,
            s.events_read,
            s.events_lost,
            s.decode_errors,
            s.spans_exported,
            s.batches_dropped,
            s.spans_dropped,
            s.parse_errors,
            s.stream_gaps,
            s.requests_lost,
            s.connections,
            s.processes,
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let config = std::env::args().nth(2).unwrap_or_else(|| "{}".into());
    let port: Option<i64> = std::env::var("BENCH_HOST_PORT").ok().map(|p| p.parse()).transpose()?;
    let every: Option<u64> = std::env::var("BENCH_HOST_REPORT_MS").ok().map(|p| p.parse()).transpose()?;
    let inst = Instance::from_json(&config)?;
    inst.start()?;
    eprintln!("bench_host: started");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut next_report = every.map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        if let Poll::Batch(b) = inst.poll(Duration::from_millis(100)) {
            tally.add(&b, port);
        }
        if let (Some(at), Some(ms)) = (next_report, every) {
            if Instant::now() >= at {
                tally.report(&inst, false);
                next_report = Some(at + Duration::from_millis(ms));
            }
        }
    }
    inst.stop();
    while let Poll::Batch(b) = inst.poll(Duration::from_millis(10)) {
        tally.add(&b, port);
    }
    tally.report(&inst, true);
    Ok(())
}
