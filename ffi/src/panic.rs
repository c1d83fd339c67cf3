//! The panic boundary: every exported function body runs in here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{clear_last_error, otel_ebpf_result, set_last_error};

/// Runs `f`, turning an `Err(message)` into its code with the message stored
/// for `otel_ebpf_last_error`, and a panic into `OTEL_EBPF_ERR_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> Result<otel_ebpf_result, (otel_ebpf_result, String)>) -> otel_ebpf_result {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => code,
        Ok(Err((code, msg))) => {
            set_last_error(msg);
            code
        }
        Err(payload) => {
            set_last_error(format!("internal error (panic): {}", panic_message(&payload)));
            otel_ebpf_result::OTEL_EBPF_ERR_PANIC
        }
    }
}

/// Like [`guard`] for calls that return a plain value; `fallback` on panic.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}
