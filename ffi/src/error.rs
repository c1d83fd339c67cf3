//! Result codes and the per-thread last error message.

use std::cell::RefCell;
use std::os::raw::c_char;

/// Outcome of every call. Values are stable: never renumber, only append.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otel_ebpf_result {
    /// Success.
    OTEL_EBPF_OK = 0,
    /// `otel_ebpf_poll`: no batch became ready before the timeout.
    OTEL_EBPF_TIMEOUT = 1,
    /// `otel_ebpf_poll`: the instance is stopped and every batch was handed out.
    OTEL_EBPF_STOPPED = 2,
    /// A required pointer argument was NULL.
    OTEL_EBPF_ERR_NULL = 3,
    /// The handle is not a live instance or batch (freed twice, or never created).
    OTEL_EBPF_ERR_INVALID_HANDLE = 4,
    /// The configuration is not valid JSON, not UTF-8, or has a bad value.
    OTEL_EBPF_ERR_CONFIG = 5,
    /// The call is not allowed in the instance's state (e.g. start after stop).
    OTEL_EBPF_ERR_STATE = 6,
    /// Starting failed: privileges, kernel features, probe load or attach.
    OTEL_EBPF_ERR_START = 7,
    /// A bug: the library panicked. The instance should be freed.
    OTEL_EBPF_ERR_PANIC = 8,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Longest message kept: errors quote the bad input (an unknown key, a
/// value), which can be as large as the config itself.
const MAX_ERROR_BYTES: usize = 4096;

pub(crate) fn set_last_error(msg: impl Into<String>) {
    let mut msg = msg.into();
    if msg.len() > MAX_ERROR_BYTES {
        let mut cut = MAX_ERROR_BYTES;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push_str("… (cut)");
    }
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().clear());
}

/// Copies the calling thread's last error message into `buf` (NUL-terminated,
/// truncated to `buf_len - 1` bytes) and returns the message's full length in
/// bytes, without the NUL. Returns 0 when the last call succeeded. `buf` may be
/// NULL (with any `buf_len`) to ask for the length only.
///
/// # Safety
/// `buf`, when not NULL, must point to `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn otel_ebpf_last_error(buf: *mut c_char, buf_len: usize) -> usize {
    crate::panic::guard_value(0, || {
        LAST_ERROR.with(|e| {
            let msg = e.borrow();
            if !buf.is_null() && buf_len > 0 {
                let n = msg.len().min(buf_len - 1);
                // SAFETY: the caller guarantees `buf` has `buf_len` bytes and n < buf_len.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            msg.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_messages_are_cut_at_a_char_boundary() {
        set_last_error("é".repeat(10_000));
        let len = LAST_ERROR.with(|e| e.borrow().len());
        assert!(len <= MAX_ERROR_BYTES + "… (cut)".len(), "{len}");
        assert!(LAST_ERROR.with(|e| e.borrow().ends_with("(cut)")));
    }
}
