//! The exported functions. Each converts C arguments, calls `ebpf_core`, and
//! maps the outcome to an [`otel_ebpf_result`].

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::Arc;
use std::time::Duration;

use ebpf_core::config::{schema, ConfigError};
use ebpf_core::stats::COUNTERS;
use ebpf_core::{Config, Instance, Poll, Signal};
use once_cell::sync::Lazy;

use crate::error::otel_ebpf_result::{self, *};
use crate::handles::{BATCHES, INSTANCES};
use crate::panic::{guard, guard_value};

/// An instance of the receiver: probes, pipeline and batch queue. Opaque.
#[allow(non_camel_case_types)]
pub struct otel_ebpf_instance {
    _private: [u8; 0],
}

/// One batch of telemetry: OTLP protobuf bytes of one signal. Opaque.
#[allow(non_camel_case_types)]
pub struct otel_ebpf_batch {
    _private: [u8; 0],
}

/// Which OTLP request message a batch holds. Values are stable: 3 was
/// `OTEL_EBPF_SIGNAL_LOGS`, removed while nothing produces logs, and stays
/// reserved for them.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otel_ebpf_signal {
    /// Not a live batch.
    OTEL_EBPF_SIGNAL_NONE = 0,
    /// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
    OTEL_EBPF_SIGNAL_TRACES = 1,
    /// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`.
    OTEL_EBPF_SIGNAL_METRICS = 2,
}

/// Counters of one instance, for health checks and tests: the first
/// counters of `otel_ebpf_counters()`, in its order (a test checks the
/// names). Newer counters are read by name only, with
/// `otel_ebpf_counters_get`; this struct no longer grows.
///
/// `otel_ebpf_stats_get` fills the six fields of version 0.1.0 (up to
/// `connections`), so a program built against an older header never has more
/// written than it allocated; `otel_ebpf_stats_get_sized` fills as many
/// fields as the caller's struct has.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct otel_ebpf_stats {
    /// Events read from the kernel ring buffer.
    pub events_read: u64,
    /// Events the kernel could not hand over (ring buffer full, tables full).
    pub events_lost: u64,
    /// Spans encoded into batches.
    pub spans_exported: u64,
    /// Batches dropped because nobody polled and the queue was full.
    pub batches_dropped: u64,
    /// Connections whose protocol parsing failed (garbage or lost bytes).
    pub parse_errors: u64,
    /// Connections currently tracked.
    pub connections: u64,
    /// Kernel events userspace could not decode (a bug or a version
    /// mismatch). This field and the ones after it came after version 0.1.0:
    /// only `otel_ebpf_stats_get_sized` fills them.
    pub decode_errors: u64,
    /// Spans inside the batches counted by `batches_dropped`.
    pub spans_dropped: u64,
    /// Holes in connections' event numbering: events the kernel lost in the
    /// middle of a connection's stream.
    pub stream_gaps: u64,
    /// Requests that produced no span because the kernel lost their events
    /// (`events_lost` counts the events themselves).
    pub requests_lost: u64,
    /// Processes traced with a cached identity (a gauge).
    pub processes: u64,
    /// Files (libraries, executables) whose TLS functions carry uprobes.
    pub tls_libraries: u64,
    /// TLS functions whose uprobes the kernel refused (left uninstrumented).
    pub tls_attach_errors: u64,
    /// TLS plaintext the kernel dropped because its socket was unknown
    /// (applications doing their own socket I/O under a memory BIO).
    pub tls_no_socket: u64,
    /// LLM API calls recognised.
    pub genai_calls: u64,
    /// Of those, calls whose bodies could not be read in full.
    pub genai_incomplete: u64,
}

/// Size in bytes of `otel_ebpf_stats` as version 0.1.0 defined it (six
/// counters): what `otel_ebpf_stats_get` writes.
pub const OTEL_EBPF_STATS_V1_SIZE: usize = 48;

/// Largest configuration `otel_ebpf_new` and `otel_ebpf_config_validate`
/// accept, in bytes without the NUL (4 MiB); longer ones are
/// `OTEL_EBPF_ERR_CONFIG` without being read.
pub const OTEL_EBPF_MAX_CONFIG_BYTES: usize = 4194304;

const _: () = assert!(OTEL_EBPF_MAX_CONFIG_BYTES == ebpf_core::config::MAX_CONFIG_BYTES);
const _: () = assert!(std::mem::offset_of!(otel_ebpf_stats, decode_errors) == OTEL_EBPF_STATS_V1_SIZE);
/// Fields of `otel_ebpf_stats`: all `uint64_t`, the first counters of the list.
const STATS_FIELDS: usize = std::mem::size_of::<otel_ebpf_stats>() / 8;
const _: () = assert!(std::mem::size_of::<otel_ebpf_stats>() == STATS_FIELDS * 8 && STATS_FIELDS <= COUNTERS.len());

type Outcome = Result<otel_ebpf_result, (otel_ebpf_result, String)>;

/// The configuration string, refused unread when over the size limit.
///
/// # Safety
/// `config_json` must be a non-NULL, NUL-terminated string.
unsafe fn config_str<'a>(config_json: *const c_char) -> Result<&'a str, ConfigError> {
    // SAFETY: the caller guarantees a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(config_json) }.to_bytes();
    ebpf_core::config::check_json_size(bytes.len())?;
    std::str::from_utf8(bytes).map_err(|e| ConfigError::one("", format!("config is not valid UTF-8: {e}")))
}

fn config_error(e: ConfigError) -> (otel_ebpf_result, String) {
    (OTEL_EBPF_ERR_CONFIG, e.to_string())
}

/// Copies `s` and a NUL into `buf` when they fit in `buf_len` bytes, else
/// makes `buf` empty (when it has room for the NUL); returns `s.len()`.
///
/// # Safety
/// `buf` must be NULL or point to `buf_len` writable bytes.
unsafe fn write_whole(s: &str, buf: *mut c_char, buf_len: usize) -> usize {
    if buf.is_null() || buf_len == 0 {
        return s.len();
    }
    let n = if s.len() < buf_len { s.len() } else { 0 };
    // SAFETY: the caller guarantees `buf_len` bytes, and n < buf_len.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    s.len()
}

/// A static NUL-terminated string computed once, or NULL if that failed.
fn static_str(s: &'static Lazy<CString>) -> *const c_char {
    crate::panic::guard_value(std::ptr::null(), || s.as_ptr())
}

static DEFAULTS: Lazy<CString> = Lazy::new(|| {
    let json = serde_json::to_string(&Config::default()).expect("the default config serializes");
    CString::new(json).expect("JSON holds no NUL")
});
static KEYS: Lazy<CString> = Lazy::new(|| {
    let json = serde_json::to_string(&schema::keys()).expect("the key list serializes");
    CString::new(json).expect("JSON holds no NUL")
});
static COUNTER_LIST: Lazy<CString> = Lazy::new(|| {
    let json = serde_json::to_string(COUNTERS).expect("the counter list serializes");
    CString::new(json).expect("JSON holds no NUL")
});

fn instance(handle: *const otel_ebpf_instance) -> Result<Arc<Instance>, (otel_ebpf_result, String)> {
    if handle.is_null() {
        return Err((OTEL_EBPF_ERR_NULL, "instance handle is NULL".into()));
    }
    INSTANCES.with(handle as u64, Arc::clone).ok_or_else(|| {
        (OTEL_EBPF_ERR_INVALID_HANDLE, format!("instance handle {handle:p} is not live (already freed?)"))
    })
}

/// Creates a stopped instance from a JSON configuration (`{}` gives the
/// defaults; see README for the keys and their limits; at most
/// `OTEL_EBPF_MAX_CONFIG_BYTES`). On success `*instance_out` holds a
/// handle to pass to `otel_ebpf_free` eventually.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string; `instance_out` must be
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_new(
    config_json: *const c_char,
    instance_out: *mut *mut otel_ebpf_instance,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if config_json.is_null() || instance_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "config_json and instance_out must not be NULL".into()));
        }
        // SAFETY: checked non-NULL above; the caller guarantees NUL termination.
        let json = unsafe { config_str(config_json) }.map_err(config_error)?;
        let inst = Instance::from_json(json).map_err(|e| (OTEL_EBPF_ERR_CONFIG, e.to_string()))?;
        let id = INSTANCES.insert(Arc::new(inst));
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { *instance_out = id as *mut otel_ebpf_instance };
        Ok(OTEL_EBPF_OK)
    })
}

/// Validates a JSON configuration without creating anything: `OTEL_EBPF_OK`,
/// or `OTEL_EBPF_ERR_CONFIG` with every problem (each naming its key) in
/// `otel_ebpf_last_error`. Hosts call it to reject bad config before start;
/// `otel_ebpf_config_problems` gives the same problems one by one.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_config_validate(config_json: *const c_char) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if config_json.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "config_json must not be NULL".into()));
        }
        // SAFETY: checked non-NULL above; the caller guarantees NUL termination.
        let json = unsafe { config_str(config_json) }.map_err(config_error)?;
        Config::from_json(json).map_err(config_error)?;
        Ok(OTEL_EBPF_OK)
    })
}

/// Checks a JSON configuration, creating nothing, and writes its problems
/// into `buf` as a JSON array of `{"key": "...", "message": "..."}` objects
/// (`[]` when it is valid). `key` is the dotted path of the key the problem
/// is about (`batch.timeout_ms`, `genai.providers[0].name`), empty for the
/// document as a whole. At most 50 problems are listed, then one (with an
/// empty key) saying how many more there were.
///
/// Returns `OTEL_EBPF_OK` for a valid configuration, `OTEL_EBPF_ERR_CONFIG`
/// for one with problems (`otel_ebpf_last_error` then holds them as text).
/// `*len_out` is set to the JSON's length without the NUL; the JSON is
/// written, NUL-terminated, only when `buf_len > *len_out` (otherwise `buf`
/// is left empty, "", when it has room): call again with a larger buffer.
/// `buf` may be NULL with `buf_len` 0 to ask for the length.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string; `buf` NULL or
/// `buf_len` writable bytes; `len_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_config_problems(
    config_json: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if config_json.is_null() || len_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "config_json and len_out must not be NULL".into()));
        }
        // SAFETY: checked non-NULL above; the caller guarantees NUL termination.
        let checked = unsafe { config_str(config_json) }.and_then(|json| Config::from_json(json).map(drop));
        let problems = checked.as_ref().err().map(ConfigError::problems).unwrap_or_default();
        let json = serde_json::to_string(&problems).map_err(|e| (OTEL_EBPF_ERR_PANIC, e.to_string()))?;
        // SAFETY: the caller guarantees `buf` and `len_out` as documented.
        unsafe { *len_out = write_whole(&json, buf, buf_len) };
        checked.map_err(config_error)?;
        Ok(OTEL_EBPF_OK)
    })
}

/// The default configuration as JSON (what `{}` means), with every key: a
/// static NUL-terminated string, or NULL if it could not be made (a bug).
#[no_mangle]
pub extern "C" fn otel_ebpf_config_defaults() -> *const c_char {
    static_str(&DEFAULTS)
}

/// Every configuration key as a JSON array, sorted by key: objects with
/// `key` (dotted path), `type` (`integer`, `boolean`, `string`, `string or
/// null`, `list of integers`, `list of strings`, `list of objects`), `unit`
/// (`bytes`, `ms`; absent for none), `default`, `description`, and the
/// bounds that apply: `minimum`, `maximum`, `max_items` (a list's length),
/// `item_minimum`, `item_maximum` (each entry's), `values` (an
/// enumeration's). A static NUL-terminated string, or NULL if it could not
/// be made (a bug).
#[no_mangle]
pub extern "C" fn otel_ebpf_config_keys() -> *const c_char {
    static_str(&KEYS)
}

/// The instance counters, in the order `otel_ebpf_counters_get` writes their
/// values, as a JSON array of objects: `name` (`events_read`), `kind`
/// (`counter`: a total since the instance started; `gauge`: a current
/// value), `unit` (`{event}`), `metric` (the self-telemetry metric that
/// exports it, `ebpf_receiver.events.read`) and `description`. New counters
/// are only ever appended. A static NUL-terminated string, or NULL if it
/// could not be made (a bug).
#[no_mangle]
pub extern "C" fn otel_ebpf_counters() -> *const c_char {
    static_str(&COUNTER_LIST)
}

/// Checks privileges and kernel features, loads and attaches the probes, and
/// starts the pipeline. Returns quickly. Starting twice is an error.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new` (stale ones are detected).
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_start(instance: *mut otel_ebpf_instance) -> otel_ebpf_result {
    guard(|| -> Outcome {
        let inst = self::instance(instance)?;
        match inst.start() {
            Ok(()) => Ok(OTEL_EBPF_OK),
            Err(e) if e.is_state() => Err((OTEL_EBPF_ERR_STATE, e.to_string())),
            Err(e) => Err((OTEL_EBPF_ERR_START, e.to_string())),
        }
    })
}

/// Waits up to `timeout_ms` for the next batch. `OTEL_EBPF_OK` sets
/// `*batch_out` (free it with `otel_ebpf_batch_free`); `OTEL_EBPF_TIMEOUT`
/// means nothing yet; `OTEL_EBPF_STOPPED` means the instance was stopped and
/// drained. Several threads may poll one instance.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `batch_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_poll(
    instance: *mut otel_ebpf_instance,
    timeout_ms: u32,
    batch_out: *mut *mut otel_ebpf_batch,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if batch_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "batch_out must not be NULL".into()));
        }
        let inst = self::instance(instance)?;
        match inst.poll(Duration::from_millis(u64::from(timeout_ms))) {
            Poll::Batch(batch) => {
                let id = BATCHES.insert(batch);
                // SAFETY: checked non-NULL above; the caller guarantees it is writable.
                unsafe { *batch_out = id as *mut otel_ebpf_batch };
                Ok(OTEL_EBPF_OK)
            }
            Poll::Timeout => Ok(OTEL_EBPF_TIMEOUT),
            Poll::Stopped => Ok(OTEL_EBPF_STOPPED),
            Poll::NotStarted => Err((OTEL_EBPF_ERR_STATE, "poll before start: call otel_ebpf_start first".into())),
        }
    })
}

/// What `otel_ebpf_poll_batch` hands over: the batch and, so that no
/// further call is needed to read it, its signal and bytes.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct otel_ebpf_batch_info {
    /// The batch: free it with `otel_ebpf_batch_free` once `data` is read.
    pub batch: *mut otel_ebpf_batch,
    /// Which OTLP request message `data` holds.
    pub signal: otel_ebpf_signal,
    /// The OTLP protobuf bytes, valid until `otel_ebpf_batch_free(batch)`.
    pub data: *const u8,
    /// Length of `data` in bytes.
    pub len: usize,
}

/// `otel_ebpf_poll` and `otel_ebpf_batch_data` in one call: waits up to
/// `timeout_ms` for the next batch; `OTEL_EBPF_OK` fills `*info_out` (free
/// `info_out->batch` with `otel_ebpf_batch_free`), `OTEL_EBPF_TIMEOUT`
/// means nothing yet, `OTEL_EBPF_STOPPED` that the instance was stopped and
/// drained. With `timeout_ms` 0 it never blocks: pair it with
/// `otel_ebpf_ready_fd`.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `info_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_poll_batch(
    instance: *mut otel_ebpf_instance,
    timeout_ms: u32,
    info_out: *mut otel_ebpf_batch_info,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if info_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "info_out must not be NULL".into()));
        }
        let inst = self::instance(instance)?;
        match inst.poll(Duration::from_millis(u64::from(timeout_ms))) {
            Poll::Batch(batch) => {
                let (signal, data, len) = (signal_of(&batch), batch.data.as_ptr(), batch.data.len());
                // The bytes stay where they are: moving the Batch into the
                // registry moves its Vec's header, not its buffer.
                let id = BATCHES.insert(batch);
                // SAFETY: checked non-NULL above; the caller guarantees it is writable.
                unsafe { *info_out = otel_ebpf_batch_info { batch: id as *mut otel_ebpf_batch, signal, data, len } };
                Ok(OTEL_EBPF_OK)
            }
            Poll::Timeout => Ok(OTEL_EBPF_TIMEOUT),
            Poll::Stopped => Ok(OTEL_EBPF_STOPPED),
            Poll::NotStarted => Err((OTEL_EBPF_ERR_STATE, "poll before start: call otel_ebpf_start first".into())),
        }
    })
}

/// A file descriptor that becomes readable when `otel_ebpf_poll` or
/// `otel_ebpf_poll_batch` may have something new: a batch, or the end after
/// `otel_ebpf_stop`. For hosts with an event loop: wait for it to be
/// readable, read 8 bytes from it (which clears it), then poll with a zero
/// timeout until `OTEL_EBPF_TIMEOUT`, instead of blocking a thread in a
/// poll. It is an eventfd, non-blocking and close-on-exec, owned by the
/// instance: `otel_ebpf_free` closes it (`dup` it to keep a copy).
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `fd_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_ready_fd(instance: *const otel_ebpf_instance, fd_out: *mut i32) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if fd_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "fd_out must not be NULL".into()));
        }
        let fd = self::instance(instance)?
            .ready_fd()
            .map_err(|e| (OTEL_EBPF_ERR_START, format!("cannot create the ready fd (eventfd): {e}")))?;
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { *fd_out = fd };
        Ok(OTEL_EBPF_OK)
    })
}

fn signal_of(batch: &ebpf_core::Batch) -> otel_ebpf_signal {
    match batch.signal {
        Signal::Traces => otel_ebpf_signal::OTEL_EBPF_SIGNAL_TRACES,
        Signal::Metrics => otel_ebpf_signal::OTEL_EBPF_SIGNAL_METRICS,
    }
}

/// The signal of a batch, or `OTEL_EBPF_SIGNAL_NONE` for a stale handle.
///
/// # Safety
/// `batch` must be NULL or a handle from `otel_ebpf_poll`.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_batch_signal(batch: *const otel_ebpf_batch) -> otel_ebpf_signal {
    guard_value(otel_ebpf_signal::OTEL_EBPF_SIGNAL_NONE, || {
        BATCHES.with(batch as u64, signal_of).unwrap_or(otel_ebpf_signal::OTEL_EBPF_SIGNAL_NONE)
    })
}

/// Points `*data_out` at the batch's OTLP protobuf bytes and sets `*len_out`.
/// The bytes stay valid until `otel_ebpf_batch_free`.
///
/// # Safety
/// `batch` must be NULL or a handle from `otel_ebpf_poll`; the outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_batch_data(
    batch: *const otel_ebpf_batch,
    data_out: *mut *const u8,
    len_out: *mut usize,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if batch.is_null() || data_out.is_null() || len_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "batch, data_out and len_out must not be NULL".into()));
        }
        let (ptr, len) = BATCHES.with(batch as u64, |b| (b.data.as_ptr(), b.data.len())).ok_or_else(|| {
            (OTEL_EBPF_ERR_INVALID_HANDLE, format!("batch handle {batch:p} is not live (already freed?)"))
        })?;
        // SAFETY: both checked non-NULL above; the caller guarantees they are writable.
        unsafe {
            *data_out = ptr;
            *len_out = len;
        }
        Ok(OTEL_EBPF_OK)
    })
}

/// Frees a batch. NULL is allowed; freeing twice returns `OTEL_EBPF_ERR_INVALID_HANDLE`.
///
/// # Safety
/// `batch` must be NULL or a handle from `otel_ebpf_poll`.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_batch_free(batch: *mut otel_ebpf_batch) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if batch.is_null() {
            return Ok(OTEL_EBPF_OK);
        }
        BATCHES
            .remove(batch as u64)
            .map(|_| OTEL_EBPF_OK)
            .ok_or_else(|| (OTEL_EBPF_ERR_INVALID_HANDLE, format!("batch handle {batch:p} is not live (freed twice?)")))
    })
}

/// Detaches every probe, flushes pending telemetry into final batches and wakes
/// pollers, which receive the remaining batches and then `OTEL_EBPF_STOPPED`.
/// Stopping twice, or before start, is allowed.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_stop(instance: *mut otel_ebpf_instance) -> otel_ebpf_result {
    guard(|| -> Outcome {
        self::instance(instance)?.stop();
        Ok(OTEL_EBPF_OK)
    })
}

/// Stops the instance if needed and frees it. NULL is allowed; freeing twice
/// returns `OTEL_EBPF_ERR_INVALID_HANDLE`. Batches already polled stay valid.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_free(instance: *mut otel_ebpf_instance) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if instance.is_null() {
            return Ok(OTEL_EBPF_OK);
        }
        let inst = INSTANCES.remove(instance as u64).ok_or_else(|| {
            (OTEL_EBPF_ERR_INVALID_HANDLE, format!("instance handle {instance:p} is not live (freed twice?)"))
        })?;
        inst.stop();
        Ok(OTEL_EBPF_OK)
    })
}

/// Copies the first six counters (up to `connections`, the struct of version
/// 0.1.0: `OTEL_EBPF_STATS_V1_SIZE` bytes) into `*stats_out` and leaves the
/// rest of it untouched. Use `otel_ebpf_stats_get_sized` for every counter.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `stats_out` NULL
/// or `OTEL_EBPF_STATS_V1_SIZE` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_stats_get(
    instance: *const otel_ebpf_instance,
    stats_out: *mut otel_ebpf_stats,
) -> otel_ebpf_result {
    // SAFETY: forwarded; the caller guarantees the v1 size.
    unsafe { otel_ebpf_stats_get_sized(instance, stats_out, OTEL_EBPF_STATS_V1_SIZE) }
}

/// Copies the instance's counters into `*stats_out`, which is `stats_size`
/// bytes long: pass `sizeof(otel_ebpf_stats)`. Exactly
/// `min(stats_size, sizeof(otel_ebpf_stats))` bytes are written, so a caller
/// built against an older (shorter) or newer (longer) header is safe; fields
/// the library does not know are left untouched (zero them first).
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `stats_out` NULL
/// or `stats_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_stats_get_sized(
    instance: *const otel_ebpf_instance,
    stats_out: *mut otel_ebpf_stats,
    stats_size: usize,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if stats_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "stats_out must not be NULL".into()));
        }
        let values = self::instance(instance)?.stats().values();
        // The struct is its first STATS_FIELDS counters, in list order.
        let out: [u64; STATS_FIELDS] = std::array::from_fn(|i| values[i]);
        let n = stats_size.min(std::mem::size_of::<otel_ebpf_stats>());
        // SAFETY: checked non-NULL above; the caller guarantees `stats_size`
        // writable bytes, and n <= stats_size and n <= size_of(out).
        unsafe { std::ptr::copy_nonoverlapping(out.as_ptr().cast::<u8>(), stats_out.cast::<u8>(), n) };
        Ok(OTEL_EBPF_OK)
    })
}

/// Copies the values of the instance's counters, in the order of
/// `otel_ebpf_counters()`, into `values_out`: `min(values_len, count)`
/// values, where `count`, the number of counters this library has, is stored
/// in `*count_out`. A caller that knows fewer counters gets the ones it
/// knows; one with room for more finds the rest of its array untouched.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `values_out`
/// NULL (with `values_len` 0) or `values_len` writable `uint64_t`s;
/// `count_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_counters_get(
    instance: *const otel_ebpf_instance,
    values_out: *mut u64,
    values_len: usize,
    count_out: *mut usize,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if values_out.is_null() && values_len > 0 {
            return Err((OTEL_EBPF_ERR_NULL, "values_out must not be NULL when values_len > 0".into()));
        }
        let values = self::instance(instance)?.stats().values();
        let n = values_len.min(values.len());
        if n > 0 {
            // SAFETY: checked non-NULL above; the caller guarantees
            // `values_len` writable u64s, and n <= values_len.
            unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), values_out, n) };
        }
        if !count_out.is_null() {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { *count_out = values.len() };
        }
        Ok(OTEL_EBPF_OK)
    })
}

/// The library version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn otel_ebpf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
