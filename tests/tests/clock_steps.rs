//! The wall clock steps (NTP, an operator's `date -s`) while the receiver
//! runs: spans and metrics follow the step, durations do not, nothing is
//! lost and the receiver keeps running.
//!
//! Stepping the host's clock would disturb everything else on it, so the
//! receiver runs in a child process (this test binary again) under
//! libfaketime, which shifts CLOCK_REALTIME for that process alone. The
//! kernel's timestamps (CLOCK_MONOTONIC) are untouched, as on a real host.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::util::TempDir;
use integration_tests::{curl, require_root, Receiver, Server, WAIT};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// How far a timestamp may be from where the step puts it.
const SLACK_NS: i64 = 5_000_000_000;

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a valid, owned struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Debian's libfaketime, under /usr/lib/<multiarch triplet>/faketime.
fn libfaketime() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|arch| arch.path().join("faketime/libfaketime.so.1"))
        .find(|lib| lib.exists())
}

fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_nanos() as i64
}

#[test]
fn spans_and_metrics_follow_clock_steps() {
    if !require_root() {
        return;
    }
    let lib =
        libfaketime().expect("libfaketime is missing: install the Debian package libfaketime (scripts/deps.sh does)");
    let dir = TempDir::new("clock");
    let step_file = dir.path().join("step");
    std::fs::write(&step_file, "+0\n").expect("write the step file");
    // The child's true time: this instant's wall clock plus the (shared,
    // unfaked) monotonic time elapsed since.
    let (real, mono) = (unix_ns(SystemTime::now()), monotonic_ns());
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "clock_step_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("LD_PRELOAD", &lib)
        .env("FAKETIME_TIMESTAMP_FILE", &step_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("OE_CLOCK_STEP_FILE", &step_file)
        .env("OE_CLOCK_REAL_NS", real.to_string())
        .env("OE_CLOCK_MONO_NS", mono.to_string())
        .output()
        .expect("run the child");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "the receiver under libfaketime failed:\n{text}");
    assert!(text.contains("clock steps followed"), "the child did not run its checks:\n{text}");
}

/// The receiver's side, run by `spans_and_metrics_follow_clock_steps` in a
/// process whose wall clock it steps by writing libfaketime's offset file.
#[test]
#[ignore = "run by spans_and_metrics_follow_clock_steps, under libfaketime"]
fn clock_step_child() {
    let (Ok(step_file), Ok(real), Ok(mono)) =
        (std::env::var("OE_CLOCK_STEP_FILE"), std::env::var("OE_CLOCK_REAL_NS"), std::env::var("OE_CLOCK_MONO_NS"))
    else {
        return;
    };
    let (real, mono): (i64, i64) = (real.parse().expect("real ns"), mono.parse().expect("mono ns"));
    let true_now = || real + (monotonic_ns() - mono);
    // libfaketime is at work: this process's clock is what the file says.
    std::fs::write(&step_file, "+1d\n").expect("write the step file");
    let faked = unix_ns(SystemTime::now()) - true_now();
    assert!((faked - DAY_NS).abs() < SLACK_NS, "libfaketime does not step this process's clock: off by {faked} ns");
    std::fs::write(&step_file, "+0\n").expect("write the step file");

    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "metrics": {{"interval_ms": 300}},
            "selection": {{"include": {{"ports": [{}]}}}}}}"#,
        server.port
    ));
    let spid = server.pid();
    // Forward a day, back two (to a day behind), then back to the true time.
    let steps = [("+0", 0), ("+1d", DAY_NS), ("-1d", -DAY_NS), ("+0", 0)];
    for (i, (step, offset)) in steps.iter().enumerate() {
        std::fs::write(&step_file, format!("{step}\n")).expect("write the step file");
        // The worker re-reads the clock offset on every tick (at most 50 ms apart).
        std::thread::sleep(Duration::from_millis(300));
        let path = format!("/step/{i}");
        let before = true_now();
        assert_eq!(curl(&server.url(&path)).codes, [200], "GET {path}");
        let spans = rx.wait_for(1, WAIT, &format!("the SERVER span of {path}"), |s| {
            s.is_server() && s.pid() == Some(spid) && s.url_path() == Some(path.as_str())
        });
        let span = &spans[0];
        let expected = before + offset;
        let start = unix_ns(span.start());
        assert!(
            (start - expected).abs() < SLACK_NS,
            "after step {step}: {path} starts {} s from where the step puts it: {}",
            (start - expected) / 1_000_000_000,
            span.describe()
        );
        assert!(span.end() >= span.start(), "after step {step}: {path} ends before it starts");
        assert!(span.duration() < Duration::from_secs(2), "after step {step}: {path} lasts {:?}", span.duration());
    }
    // A metrics interval after the last step, then stop.
    std::thread::sleep(Duration::from_millis(700));
    // The last export is made while stopping, which takes seconds (each
    // uprobe of the host's TLS binaries is removed one by one): bracket it.
    let before_stop = true_now();
    rx.stop();
    let after_stop = true_now();
    let spans = rx.spans_where(|s| s.is_server() && s.pid() == Some(spid));
    assert_eq!(spans.len(), steps.len(), "one SERVER span per request:\n{}", rx.dump(|s| s.pid() == Some(spid), 10));

    // Every metric point is well formed across the steps (never ends before
    // it starts), and the last export is stamped at the true time again.
    let exports: Vec<Vec<(String, u64, u64)>> = rx.metric_requests().iter().map(point_times).collect();
    let points = exports.iter().flatten().count();
    assert!(points > 0, "no metric points");
    for (name, start, time) in exports.iter().flatten() {
        assert!(start <= time, "{name}: a point that ends ({time}) before it starts ({start})");
    }
    let last = exports.last().and_then(|e| e.iter().map(|p| p.2).max()).expect("a metrics export") as i64;
    assert!(
        last > before_stop - SLACK_NS && last < after_stop + SLACK_NS,
        "the last metrics export is {} s off the true time of the stop ({} s long)",
        (last - before_stop) / 1_000_000_000,
        (after_stop - before_stop) / 1_000_000_000
    );
    println!("clock steps followed: {} spans, {points} metric points", spans.len());
}

/// (metric name, start, time) of every data point of one export.
fn point_times(req: &ExportMetricsServiceRequest) -> Vec<(String, u64, u64)> {
    let metrics = req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
    metrics
        .flat_map(|m| {
            let times: Vec<(u64, u64)> = match &m.data {
                Some(Data::Sum(s)) => {
                    s.data_points.iter().map(|p| (p.start_time_unix_nano, p.time_unix_nano)).collect()
                }
                Some(Data::Gauge(g)) => {
                    g.data_points.iter().map(|p| (p.start_time_unix_nano, p.time_unix_nano)).collect()
                }
                Some(Data::Histogram(h)) => {
                    h.data_points.iter().map(|p| (p.start_time_unix_nano, p.time_unix_nano)).collect()
                }
                Some(Data::ExponentialHistogram(h)) => {
                    h.data_points.iter().map(|p| (p.start_time_unix_nano, p.time_unix_nano)).collect()
                }
                Some(Data::Summary(s)) => {
                    s.data_points.iter().map(|p| (p.start_time_unix_nano, p.time_unix_nano)).collect()
                }
                None => Vec::new(),
            };
            times.into_iter().map(|(start, time)| (m.name.clone(), start, time))
        })
        .collect()
}
