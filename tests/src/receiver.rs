//! The receiver under test, driven through its C ABI exactly as a C host
//! drives it: `otel_ebpf_new` → `otel_ebpf_start` → a thread looping on
//! `otel_ebpf_poll` → `otel_ebpf_stop` → drain until `OTEL_EBPF_STOPPED` →
//! `otel_ebpf_free`. Every trace batch is decoded with prost into
//! [`SpanRec`]s; the raw bytes are kept too, for "never appears" checks.

use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otel_ebpf::otel_ebpf_result::{self, *};
use otel_ebpf::otel_ebpf_signal::*;
use otel_ebpf::{otel_ebpf_instance, otel_ebpf_stats};
use prost::Message;

use crate::span::SpanRec;
use crate::util::contains_bytes;

/// The calling thread's `otel_ebpf_last_error`, as a Rust string.
pub fn last_error() -> String {
    // SAFETY: NULL buffer asks for the length only.
    let len = unsafe { otel_ebpf::otel_ebpf_last_error(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; len + 1];
    // SAFETY: buf has buf.len() writable bytes.
    let n = unsafe { otel_ebpf::otel_ebpf_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, len, "otel_ebpf_last_error length changed between two calls");
    buf.truncate(len);
    String::from_utf8_lossy(&buf).into_owned()
}

#[derive(Default)]
struct Collected {
    spans: Vec<SpanRec>,
    raw: Vec<Vec<u8>>,
    other_signals: usize,
    /// The bytes of every metrics batch (also in `raw`), decoded on demand.
    metric_raw: Vec<Vec<u8>>,
    /// Set when the poll thread ended: why.
    ended: Option<String>,
    /// A decode or protocol failure seen by the poll thread.
    errors: Vec<String>,
}

struct Shared {
    data: Mutex<Collected>,
    cond: Condvar,
}

/// A started receiver instance plus the thread that polls it.
pub struct Receiver {
    handle: usize,
    shared: Arc<Shared>,
    poller: Option<JoinHandle<()>>,
    stopped: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("handle", &self.handle).finish()
    }
}

/// The environment variable that makes every receiver of the suite run on
/// one data path (`socket` or `syscall`: the `data_path` config key), so
/// `make test` runs the kernel suite on both.
pub const DATA_PATH_ENV: &str = "OTEL_EBPF_TEST_DATA_PATH";

/// The data path `$OTEL_EBPF_TEST_DATA_PATH` forces, if any.
pub fn test_data_path() -> Option<String> {
    std::env::var(DATA_PATH_ENV).ok().filter(|p| !p.is_empty())
}

/// `config_json` with `data_path` set from `$OTEL_EBPF_TEST_DATA_PATH`,
/// unless the config names one itself (a test about data paths).
pub fn with_test_data_path(config_json: &str) -> String {
    let Some(path) = test_data_path() else { return config_json.to_string() };
    let mut value: serde_json::Value = if config_json.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(config_json).unwrap_or_else(|e| panic!("test config {config_json}: {e}"))
    };
    let Some(object) = value.as_object_mut() else { return config_json.to_string() };
    object.entry("data_path").or_insert(serde_json::Value::String(path));
    value.to_string()
}

/// The config the tests use: short batch timeout so spans arrive quickly.
pub const TEST_CONFIG: &str = r#"{"batch": {"timeout_ms": 200}}"#;

impl Receiver {
    /// Creates and starts an instance with [`TEST_CONFIG`], or with
    /// `$OTEL_EBPF_TEST_CONFIG` when set (to rerun a test with, e.g., a larger
    /// capture size); panics with the library's message on failure.
    pub fn start() -> Self {
        match std::env::var("OTEL_EBPF_TEST_CONFIG") {
            Ok(cfg) if !cfg.is_empty() => Self::start_with(&cfg),
            _ => Self::start_with(TEST_CONFIG),
        }
    }

    /// Creates and starts an instance from `config_json` (with the data
    /// path `$OTEL_EBPF_TEST_DATA_PATH` names, see [`with_test_data_path`]).
    pub fn start_with(config_json: &str) -> Self {
        let config_json = &with_test_data_path(config_json);
        let cfg = CString::new(config_json.as_str()).expect("config without NUL");
        let mut inst: *mut otel_ebpf_instance = std::ptr::null_mut();
        // SAFETY: valid C string and a writable out pointer.
        let rc = unsafe { otel_ebpf::otel_ebpf_new(cfg.as_ptr(), &mut inst) };
        assert_eq!(rc, OTEL_EBPF_OK, "otel_ebpf_new({config_json}): {}", last_error());
        assert!(!inst.is_null(), "otel_ebpf_new returned OK and a NULL handle");
        // SAFETY: a live handle from otel_ebpf_new.
        let rc = unsafe { otel_ebpf::otel_ebpf_start(inst) };
        if rc != OTEL_EBPF_OK {
            let msg = last_error();
            // SAFETY: live handle, freed once.
            unsafe { otel_ebpf::otel_ebpf_free(inst) };
            panic!("otel_ebpf_start: {rc:?}: {msg}");
        }
        let shared = Arc::new(Shared { data: Mutex::new(Collected::default()), cond: Condvar::new() });
        let handle = inst as usize;
        let poller = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("otel-ebpf-poll".into())
                .spawn(move || poll_loop(handle, &shared))
                .expect("spawn poll thread")
        };
        Self { handle, shared, poller: Some(poller), stopped: false }
    }

    fn inst(&self) -> *mut otel_ebpf_instance {
        self.handle as *mut otel_ebpf_instance
    }

    /// The instance's counters.
    pub fn stats(&self) -> otel_ebpf_stats {
        let mut s = otel_ebpf_stats::default();
        // SAFETY: live handle (freed only in Drop), writable out pointer.
        let rc = unsafe { otel_ebpf::otel_ebpf_stats_get(self.inst(), &mut s) };
        assert_eq!(rc, OTEL_EBPF_OK, "otel_ebpf_stats_get: {}", last_error());
        s
    }

    /// Every counter, through `otel_ebpf_stats_get_sized` (the fields after
    /// `connections` too: `requests_lost`, `stream_gaps`, ...).
    pub fn stats_all(&self) -> otel_ebpf_stats {
        let mut s = otel_ebpf_stats::default();
        // SAFETY: live handle (freed only in Drop), a writable struct of the size passed.
        let rc = unsafe {
            otel_ebpf::otel_ebpf_stats_get_sized(self.inst(), &mut s, std::mem::size_of::<otel_ebpf_stats>())
        };
        assert_eq!(rc, OTEL_EBPF_OK, "otel_ebpf_stats_get_sized: {}", last_error());
        s
    }

    /// The counter `name` (`otel_ebpf_counters()`'s names: `responses_unmatched`),
    /// read by name as hosts read the counters the stats struct lacks.
    pub fn counter(&self, name: &str) -> u64 {
        let list = otel_ebpf::otel_ebpf_counters();
        assert!(!list.is_null(), "otel_ebpf_counters returned NULL");
        // SAFETY: a static NUL-terminated string.
        let list = unsafe { std::ffi::CStr::from_ptr(list) }.to_str().expect("UTF-8 counter list");
        let list: Vec<serde_json::Value> = serde_json::from_str(list).expect("counter list is JSON");
        let index = list.iter().position(|c| c["name"] == name).unwrap_or_else(|| panic!("no counter {name}"));
        let mut values = vec![0u64; list.len()];
        let mut count = 0usize;
        // SAFETY: live handle, `values` has `values.len()` writable slots, `count` is writable.
        let rc =
            unsafe { otel_ebpf::otel_ebpf_counters_get(self.inst(), values.as_mut_ptr(), values.len(), &mut count) };
        assert_eq!(rc, OTEL_EBPF_OK, "otel_ebpf_counters_get: {}", last_error());
        values[index]
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRec> {
        self.shared.data.lock().unwrap().spans.clone()
    }

    /// Spans received so far that match `pred`.
    pub fn spans_where(&self, pred: impl Fn(&SpanRec) -> bool) -> Vec<SpanRec> {
        self.shared.data.lock().unwrap().spans.iter().filter(|s| pred(s)).cloned().collect()
    }

    /// Batches of other signals than traces (metrics) received so far.
    pub fn other_batches(&self) -> usize {
        self.shared.data.lock().unwrap().other_signals
    }

    /// Every metrics batch received so far, decoded; panics on one that does not decode.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        let batches = self.shared.data.lock().unwrap().metric_raw.clone();
        batches
            .iter()
            .map(|b| {
                ExportMetricsServiceRequest::decode(b.as_slice())
                    .unwrap_or_else(|e| panic!("metrics batch of {} bytes does not decode: {e}", b.len()))
            })
            .collect()
    }

    /// True when any received batch's bytes (every signal) contain `needle`.
    pub fn raw_contains(&self, needle: &[u8]) -> bool {
        self.shared.data.lock().unwrap().raw.iter().any(|b| contains_bytes(b, needle))
    }

    /// Number of batches received, every signal.
    pub fn batches(&self) -> usize {
        self.shared.data.lock().unwrap().raw.len()
    }

    /// Waits until at least `n` spans match `pred` (deadline `timeout`) and
    /// returns them; panics with a diagnostic dump otherwise.
    pub fn wait_for(&self, n: usize, timeout: Duration, what: &str, pred: impl Fn(&SpanRec) -> bool) -> Vec<SpanRec> {
        let deadline = Instant::now() + timeout;
        let mut data = self.shared.data.lock().unwrap();
        loop {
            let matched: Vec<SpanRec> = data.spans.iter().filter(|s| pred(s)).cloned().collect();
            if matched.len() >= n {
                return matched;
            }
            let now = Instant::now();
            if now >= deadline || data.ended.is_some() {
                let got = matched.len();
                let total = data.spans.len();
                let ended = data.ended.clone();
                let errors = data.errors.clone();
                drop(data);
                panic!(
                    "waited {timeout:?} for {n} spans ({what}); got {got} (of {total} spans from the host); \
                     poll thread ended: {ended:?}; errors: {errors:?}; stats: {:?}\n{}",
                    self.stats_all(),
                    self.dump(|_| true, 40)
                );
            }
            data = self.shared.cond.wait_timeout(data, deadline - now).unwrap().0;
        }
    }

    /// Stops the instance and collects everything it flushes: after this the
    /// span list is final, so counts are exact. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // SAFETY: live handle.
        let rc = unsafe { otel_ebpf::otel_ebpf_stop(self.inst()) };
        assert_eq!(rc, OTEL_EBPF_OK, "otel_ebpf_stop: {}", last_error());
        if let Some(t) = self.poller.take() {
            t.join().expect("poll thread panicked");
        }
        let data = self.shared.data.lock().unwrap();
        assert_eq!(
            data.ended.as_deref(),
            Some("stopped"),
            "after otel_ebpf_stop the poller must drain to OTEL_EBPF_STOPPED"
        );
        assert!(data.errors.is_empty(), "batch errors: {:?}", data.errors);
    }

    /// The last `limit` spans matching `pred`, one line each, for failure messages.
    pub fn dump(&self, pred: impl Fn(&SpanRec) -> bool, limit: usize) -> String {
        let data = self.shared.data.lock().unwrap();
        let matched: Vec<&SpanRec> = data.spans.iter().filter(|s| pred(s)).collect();
        let mut out = String::new();
        let skip = matched.len().saturating_sub(limit);
        if skip > 0 {
            let _ = writeln!(out, "  ... {skip} earlier spans");
        }
        for s in &matched[skip..] {
            let _ = writeln!(out, "  {}", s.describe());
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            // SAFETY: live handle.
            unsafe { otel_ebpf::otel_ebpf_stop(self.inst()) };
            if let Some(t) = self.poller.take() {
                let _ = t.join();
            }
        }
        // SAFETY: live handle, freed exactly once.
        let rc = unsafe { otel_ebpf::otel_ebpf_free(self.inst()) };
        if rc != OTEL_EBPF_OK && !std::thread::panicking() {
            panic!("otel_ebpf_free: {rc:?}: {}", last_error());
        }
    }
}

fn poll_loop(handle: usize, shared: &Shared) {
    let inst = handle as *mut otel_ebpf_instance;
    let ended = loop {
        let mut batch = std::ptr::null_mut();
        // SAFETY: the handle stays live until this thread is joined.
        let rc: otel_ebpf_result = unsafe { otel_ebpf::otel_ebpf_poll(inst, 100, &mut batch) };
        match rc {
            OTEL_EBPF_OK => {}
            OTEL_EBPF_TIMEOUT => continue,
            OTEL_EBPF_STOPPED => break "stopped".to_string(),
            other => break format!("otel_ebpf_poll: {other:?}: {}", last_error()),
        }
        // SAFETY: a batch handle just returned by poll.
        let signal = unsafe { otel_ebpf::otel_ebpf_batch_signal(batch) };
        let mut ptr: *const u8 = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: live batch, writable outputs.
        let rc = unsafe { otel_ebpf::otel_ebpf_batch_data(batch, &mut ptr, &mut len) };
        let bytes = if rc == OTEL_EBPF_OK && (len == 0 || !ptr.is_null()) {
            // SAFETY: the library guarantees `len` bytes at `ptr` until the batch is freed.
            Some(if len == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec() })
        } else {
            None
        };
        let err = if bytes.is_none() { Some(format!("otel_ebpf_batch_data: {rc:?}: {}", last_error())) } else { None };
        // SAFETY: freed exactly once.
        let rc_free = unsafe { otel_ebpf::otel_ebpf_batch_free(batch) };

        let mut data = shared.data.lock().unwrap();
        if let Some(e) = err {
            data.errors.push(e);
        }
        if rc_free != OTEL_EBPF_OK {
            data.errors.push(format!("otel_ebpf_batch_free: {rc_free:?}"));
        }
        if let Some(bytes) = bytes {
            if signal == OTEL_EBPF_SIGNAL_TRACES {
                match ExportTraceServiceRequest::decode(bytes.as_slice()) {
                    Ok(req) => {
                        let spans = SpanRec::from_request(req);
                        if spans.is_empty() {
                            data.errors.push("a trace batch with no spans".into());
                        }
                        data.spans.extend(spans);
                    }
                    Err(e) => data.errors.push(format!("trace batch of {len} bytes does not decode: {e}")),
                }
            } else {
                data.other_signals += 1;
                if signal == OTEL_EBPF_SIGNAL_METRICS {
                    data.metric_raw.push(bytes.clone());
                }
            }
            data.raw.push(bytes);
        }
        drop(data);
        shared.cond.notify_all();
    };
    shared.data.lock().unwrap().ended = Some(ended);
    shared.cond.notify_all();
}
