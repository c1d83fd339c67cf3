//! A minimal host for benchmarks: runs the receiver for N seconds, polls and
//! discards batches (as a collector hands them on), then prints its counters
//! as JSON. `bench_host SECONDS [CONFIG_JSON]`.

use std::time::{Duration, Instant};

use ebpf_core::{Instance, Poll};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let config = std::env::args().nth(2).unwrap_or_else(|| "{}".into());
    let inst = Instance::from_json(&config)?;
    inst.start()?;
    eprintln!("bench_host: started");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut batches, mut bytes) = (0u64, 0u64);
    while Instant::now() < deadline {
        if let Poll::Batch(b) = inst.poll(Duration::from_millis(100)) {
            batches += 1;
            bytes += b.data.len() as u64;
        }
    }
    inst.stop();
    while let Poll::Batch(b) = inst.poll(Duration::from_millis(10)) {
        batches += 1;
        bytes += b.data.len() as u64;
    }
    let s = inst.stats();
    println!(
        r#"{{"batches":{batches},"bytes":{bytes},"events_read":{},"events_lost":{},"spans_exported":{},"parse_errors":{}}}"#,
        s.events_read, s.events_lost, s.spans_exported, s.parse_errors
    );
    Ok(())
}
