//! Prints every span the receiver sees for N seconds: a quick look without a collector.
//! `cargo run --release -p ebpf-core --example print_spans -- 10 ['{"record_events": "/tmp/ev.bin"}']`
//! With `PRINT_SPANS_DUMP=DIR`, each trace batch's OTLP bytes also go to `DIR/traces-N.binpb`
//! (the Go receiver's decoder tests replay such batches).

use std::time::{Duration, Instant};

use ebpf_core::{Instance, Poll};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let config = std::env::args().nth(2).unwrap_or_else(|| r#"{"batch": {"timeout_ms": 200}}"#.into());
    let inst = Instance::from_json(&config)?;
    inst.start()?;
    let dump = std::env::var_os("PRINT_SPANS_DUMP").map(std::path::PathBuf::from);
    let mut dumped = 0;
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Poll::Batch(b) = inst.poll(Duration::from_millis(200)) {
            if let (Some(dir), ebpf_core::Signal::Traces) = (&dump, b.signal) {
                std::fs::write(dir.join(format!("traces-{dumped}.binpb")), &b.data)?;
                dumped += 1;
            }
            let req = ExportTraceServiceRequest::decode(b.data.as_slice())?;
            for rs in &req.resource_spans {
                let service = rs.resource.as_ref().and_then(|r| {
                    r.attributes.iter().find(|kv| kv.key == "service.name").map(|kv| format!("{:?}", kv.value))
                });
                for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                    let ms = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6;
                    let attrs: Vec<String> = span
                        .attributes
                        .iter()
                        .map(|kv| format!("{}={:?}", kv.key, kv.value.as_ref().and_then(|v| v.value.as_ref())))
                        .collect();
                    println!("{} kind={} {:.2}ms service={:?} {}", span.name, span.kind, ms, service, attrs.join(" "));
                }
            }
        }
    }
    inst.stop();
    println!("stats: {:?}", inst.stats());
    Ok(())
}
