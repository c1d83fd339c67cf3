//! Start and stop the receiver many times in one process: no leaked fds,
//! threads, memory, or BPF programs, maps and links.
//! OTEL_EBPF_LIFECYCLE_CYCLES sets the count (default 100). Each stop waits
//! for the kernel to detach every probe (~40 ms per tracepoint, ~100 ms per
//! uprobe, serialised by the kernel), so the many cycles run without the
//! OpenSSL uprobes and a few more run with the default configuration.

use std::ffi::CString;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use integration_tests::receiver::last_error;
use integration_tests::require_root;
use otel_ebpf::otel_ebpf_result::*;
use otel_ebpf::*;

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// BPF objects this process holds: programs, maps, links and the perf
/// events tracepoints attach through, as its fds show them.
fn our_bpf_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| {
            let t = target.to_string_lossy();
            t.contains("bpf") || t.contains("perf_event")
        })
        .count()
}

const NO_TLS: &str = r#"{"tls": {"enabled": false}}"#;
const DEFAULT: &str = "{}";

fn cycle(config: &str) {
    let cfg = CString::new(integration_tests::receiver::with_test_data_path(config)).unwrap();
    let mut inst = null_mut();
    // SAFETY: valid string and out pointer; the handle is used and freed below.
    unsafe {
        assert_eq!(otel_ebpf_new(cfg.as_ptr(), &mut inst), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_OK, "{}", last_error());
        let mut batch = null_mut();
        let rc = otel_ebpf_poll(inst, 0, &mut batch);
        if rc == OTEL_EBPF_OK {
            otel_ebpf_batch_free(batch);
        }
        assert_eq!(otel_ebpf_stop(inst), OTEL_EBPF_OK);
        // Drain what the stop flushed, until the instance says it is done.
        loop {
            let mut batch = null_mut();
            match otel_ebpf_poll(inst, 100, &mut batch) {
                OTEL_EBPF_OK => assert_eq!(otel_ebpf_batch_free(batch), OTEL_EBPF_OK),
                OTEL_EBPF_STOPPED => break,
                other => panic!("poll after stop: {other:?} {}", last_error()),
            }
        }
        assert_eq!(otel_ebpf_free(inst), OTEL_EBPF_OK);
    }
}

#[test]
fn start_stop_many_times_leaks_nothing() {
    if !require_root() {
        return;
    }
    let cycles: usize = std::env::var("OTEL_EBPF_LIFECYCLE_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    // Warm up once: allocator arenas, lazy statics, the first thread stacks.
    cycle(DEFAULT);
    let (fds, threads, rss) = (count_dir("/proc/self/fd"), count_dir("/proc/self/task"), rss_kib());
    // Programs, maps and links live while an fd (ours) or a pin refers to them;
    // we pin nothing, so no BPF fd left means nothing left in the kernel.
    // (A host-wide bpftool count would see other loaders' programs.)
    assert_eq!(our_bpf_fds(), 0, "BPF objects left after the warm-up cycle");
    let started = Instant::now();
    for i in 0..cycles {
        cycle(if i % 25 == 0 { DEFAULT } else { NO_TLS });
    }
    let per_cycle = started.elapsed() / cycles as u32;
    // Threads end asynchronously after join returns their results; give them a moment.
    integration_tests::util::wait_until(Duration::from_secs(5), || {
        (count_dir("/proc/self/task") <= threads).then_some(())
    });
    assert_eq!(count_dir("/proc/self/fd"), fds, "file descriptors leaked over {cycles} cycles");
    assert!(count_dir("/proc/self/task") <= threads, "threads leaked over {cycles} cycles");
    assert_eq!(our_bpf_fds(), 0, "BPF programs, maps or links leaked over {cycles} cycles");
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB over {cycles} cycles");
    eprintln!("{cycles} start/stop cycles, {per_cycle:?} each, RSS +{grown} KiB");
}
