//! The exported functions. Each converts C arguments, calls `ebpf_core`, and
//! maps the outcome to an [`otel_ebpf_result`].

use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Arc;
use std::time::Duration;

use ebpf_core::{Config, Instance, Poll, Signal};

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

/// Which OTLP request message a batch holds.
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
    /// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
    OTEL_EBPF_SIGNAL_LOGS = 3,
}

/// Counters of one instance, for health checks and tests.
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
}

type Outcome = Result<otel_ebpf_result, (otel_ebpf_result, String)>;

fn instance(handle: *const otel_ebpf_instance) -> Result<Arc<Instance>, (otel_ebpf_result, String)> {
    if handle.is_null() {
        return Err((OTEL_EBPF_ERR_NULL, "instance handle is NULL".into()));
    }
    INSTANCES.with(handle as u64, Arc::clone).ok_or_else(|| {
        (OTEL_EBPF_ERR_INVALID_HANDLE, format!("instance handle {handle:p} is not live (already freed?)"))
    })
}

/// Creates a stopped instance from a JSON configuration (`{}` gives the
/// defaults; see README for the keys). On success `*instance_out` holds a
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
        // SAFETY: the caller guarantees a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(config_json) }.to_bytes();
        let json = std::str::from_utf8(bytes)
            .map_err(|e| (OTEL_EBPF_ERR_CONFIG, format!("config is not valid UTF-8: {e}")))?;
        let inst = Instance::from_json(json).map_err(|e| (OTEL_EBPF_ERR_CONFIG, e.to_string()))?;
        let id = INSTANCES.insert(Arc::new(inst));
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { *instance_out = id as *mut otel_ebpf_instance };
        Ok(OTEL_EBPF_OK)
    })
}

/// Validates a JSON configuration without creating anything: `OTEL_EBPF_OK`,
/// or `OTEL_EBPF_ERR_CONFIG` with the reason (naming the key) in
/// `otel_ebpf_last_error`. Hosts call it to reject bad config before start.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_config_validate(config_json: *const c_char) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if config_json.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "config_json must not be NULL".into()));
        }
        // SAFETY: the caller guarantees a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(config_json) }.to_bytes();
        let json = std::str::from_utf8(bytes)
            .map_err(|e| (OTEL_EBPF_ERR_CONFIG, format!("config is not valid UTF-8: {e}")))?;
        Config::from_json(json).map_err(|e| (OTEL_EBPF_ERR_CONFIG, e.to_string()))?;
        Ok(OTEL_EBPF_OK)
    })
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

/// The signal of a batch, or `OTEL_EBPF_SIGNAL_NONE` for a stale handle.
///
/// # Safety
/// `batch` must be NULL or a handle from `otel_ebpf_poll`.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_batch_signal(batch: *const otel_ebpf_batch) -> otel_ebpf_signal {
    guard_value(otel_ebpf_signal::OTEL_EBPF_SIGNAL_NONE, || {
        BATCHES
            .with(batch as u64, |b| match b.signal {
                Signal::Traces => otel_ebpf_signal::OTEL_EBPF_SIGNAL_TRACES,
                Signal::Metrics => otel_ebpf_signal::OTEL_EBPF_SIGNAL_METRICS,
                Signal::Logs => otel_ebpf_signal::OTEL_EBPF_SIGNAL_LOGS,
            })
            .unwrap_or(otel_ebpf_signal::OTEL_EBPF_SIGNAL_NONE)
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

/// Copies the instance's counters into `*stats_out`.
///
/// # Safety
/// `instance` must be NULL or a handle from `otel_ebpf_new`; `stats_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_stats_get(
    instance: *const otel_ebpf_instance,
    stats_out: *mut otel_ebpf_stats,
) -> otel_ebpf_result {
    guard(|| -> Outcome {
        if stats_out.is_null() {
            return Err((OTEL_EBPF_ERR_NULL, "stats_out must not be NULL".into()));
        }
        let s = self::instance(instance)?.stats();
        let out = otel_ebpf_stats {
            events_read: s.events_read,
            events_lost: s.events_lost,
            spans_exported: s.spans_exported,
            batches_dropped: s.batches_dropped,
            parse_errors: s.parse_errors,
            connections: s.connections,
        };
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { *stats_out = out };
        Ok(OTEL_EBPF_OK)
    })
}

/// The library version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn otel_ebpf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
