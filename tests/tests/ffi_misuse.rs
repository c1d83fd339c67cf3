//! The C ABI under misuse, called exactly as C calls it: NULL pointers,
//! stale and forged handles, double frees, calls in the wrong state and bad
//! configurations all answer an error code and a readable last error, never
//! a crash.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use std::time::Duration;

use integration_tests::receiver::last_error;
use integration_tests::{curl, require_root, Server};
use otel_ebpf::otel_ebpf_result::*;
use otel_ebpf::otel_ebpf_signal::*;
use otel_ebpf::*;

fn new_instance(json: &str) -> Result<*mut otel_ebpf_instance, (otel_ebpf_result, String)> {
    let cfg = CString::new(json).unwrap();
    let mut inst = null_mut();
    // SAFETY: valid string and out pointer.
    let rc = unsafe { otel_ebpf_new(cfg.as_ptr(), &mut inst) };
    if rc == OTEL_EBPF_OK {
        assert!(!inst.is_null());
        assert_eq!(last_error(), "", "a successful call leaves no last error");
        Ok(inst)
    } else {
        Err((rc, last_error()))
    }
}

/// `otel_ebpf_config_validate` must agree with `otel_ebpf_new`, message included.
fn validate(json: &str) -> Result<(), (otel_ebpf_result, String)> {
    let cfg = CString::new(json).unwrap();
    // SAFETY: a valid NUL-terminated string.
    match unsafe { otel_ebpf_config_validate(cfg.as_ptr()) } {
        OTEL_EBPF_OK => Ok(()),
        rc => Err((rc, last_error())),
    }
}

fn free(inst: *mut otel_ebpf_instance) {
    // SAFETY: a handle from otel_ebpf_new (stale ones are detected).
    assert_eq!(unsafe { otel_ebpf_free(inst) }, OTEL_EBPF_OK, "{}", last_error());
}

#[test]
fn null_pointers_are_rejected() {
    let cfg = CString::new("{}").unwrap();
    let mut inst = null_mut();
    // SAFETY: NULL arguments are part of the contract.
    unsafe {
        assert_eq!(otel_ebpf_new(null(), &mut inst), OTEL_EBPF_ERR_NULL);
        assert!(!last_error().is_empty(), "ERR_NULL comes with a message");
        assert!(inst.is_null(), "no handle on failure");
        assert_eq!(otel_ebpf_new(cfg.as_ptr(), null_mut()), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_start(null_mut()), OTEL_EBPF_ERR_NULL);
        let mut batch = null_mut();
        assert_eq!(otel_ebpf_poll(null_mut(), 0, &mut batch), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_stop(null_mut()), OTEL_EBPF_ERR_NULL);
        let mut stats = otel_ebpf_stats::default();
        assert_eq!(otel_ebpf_stats_get(null(), &mut stats), OTEL_EBPF_ERR_NULL);
        let mut data = null();
        let mut len = 0usize;
        assert_eq!(otel_ebpf_batch_data(null(), &mut data, &mut len), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_batch_signal(null()), OTEL_EBPF_SIGNAL_NONE);
        // Freeing NULL is allowed, like free(3).
        assert_eq!(otel_ebpf_free(null_mut()), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_batch_free(null_mut()), OTEL_EBPF_OK);
    }
    let inst = new_instance("{}").expect("{} is a valid config");
    // SAFETY: live handle, NULL outputs.
    unsafe {
        assert_eq!(otel_ebpf_poll(inst, 0, null_mut()), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_stats_get(inst, null_mut()), OTEL_EBPF_ERR_NULL);
    }
    free(inst);
}

#[test]
fn double_free_and_stale_handles_are_detected() {
    let inst = new_instance("{}").unwrap();
    free(inst);
    // SAFETY: stale handles are detected by contract.
    unsafe {
        assert_eq!(otel_ebpf_free(inst), OTEL_EBPF_ERR_INVALID_HANDLE);
        let msg = last_error();
        assert!(msg.contains("not live"), "readable message for a double free: {msg:?}");
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_ERR_INVALID_HANDLE);
        let mut batch = null_mut();
        assert_eq!(otel_ebpf_poll(inst, 0, &mut batch), OTEL_EBPF_ERR_INVALID_HANDLE);
        assert_eq!(otel_ebpf_stop(inst), OTEL_EBPF_ERR_INVALID_HANDLE);
        let mut stats = otel_ebpf_stats::default();
        assert_eq!(otel_ebpf_stats_get(inst, &mut stats), OTEL_EBPF_ERR_INVALID_HANDLE);

        // Forged handles: never returned by the library.
        let forged = 0xdead_beef_usize as *mut otel_ebpf_instance;
        assert_eq!(otel_ebpf_start(forged), OTEL_EBPF_ERR_INVALID_HANDLE);
        assert_eq!(otel_ebpf_free(forged), OTEL_EBPF_ERR_INVALID_HANDLE);
        let fb = 0xdead_beef_usize as *mut otel_ebpf_batch;
        assert_eq!(otel_ebpf_batch_free(fb), OTEL_EBPF_ERR_INVALID_HANDLE);
        assert_eq!(otel_ebpf_batch_signal(fb), OTEL_EBPF_SIGNAL_NONE);
        let mut data = null();
        let mut len = 0usize;
        assert_eq!(otel_ebpf_batch_data(fb, &mut data, &mut len), OTEL_EBPF_ERR_INVALID_HANDLE);
        // A batch handle is not an instance handle, even if ids were shared.
        assert_eq!(otel_ebpf_free(fb.cast()), OTEL_EBPF_ERR_INVALID_HANDLE);
    }
}

#[test]
fn poll_before_start_is_a_state_error() {
    let inst = new_instance("{}").unwrap();
    let mut batch = null_mut();
    // SAFETY: live handle.
    let rc = unsafe { otel_ebpf_poll(inst, 10, &mut batch) };
    assert_eq!(rc, OTEL_EBPF_ERR_STATE);
    let msg = last_error();
    assert!(msg.contains("start"), "the message says to start first: {msg:?}");
    assert!(batch.is_null());
    // Stopping an instance that never started is allowed.
    // SAFETY: live handle.
    assert_eq!(unsafe { otel_ebpf_stop(inst) }, OTEL_EBPF_OK);
    free(inst);
}

#[test]
fn bad_configs_are_config_errors_with_readable_messages() {
    for (json, must_mention) in [
        ("{", "JSON"),
        ("not json", "JSON"),
        ("[]", ""),
        (r#"{"capture_size": "big"}"#, "capture_size: must be an integer"),
        (r#"{"no_such_key": 1}"#, "no_such_key"),
        (r#"{"batch": {"timeout": 5}}"#, "timeout"),
        (r#"{"capture_size": 0}"#, "capture_size"),
        (r#"{"capture_size": 100000}"#, "capture_size"),
        (r#"{"ring_buffer_size": 5000}"#, "ring_buffer_size"),
        (r#"{"batch": {"max_spans": 0}}"#, "max_spans"),
        (r#"{"queue_size": 0}"#, "queue_size"),
        (r#"{"selection": {"exclude": {"pidz": [1]}}}"#, "pidz"),
    ] {
        match new_instance(json) {
            Ok(inst) => {
                free(inst);
                panic!("config {json} was accepted");
            }
            Err((rc, msg)) => {
                assert_eq!(validate(json), Err((rc, msg.clone())), "config_validate agrees with new on {json}");
                assert_eq!(rc, OTEL_EBPF_ERR_CONFIG, "config {json}: {msg}");
                assert!(!msg.is_empty() && msg.len() < 1000, "config {json}: message {msg:?}");
                assert!(msg.contains(must_mention), "config {json}: message {msg:?} should mention {must_mention:?}");
            }
        }
    }
    // Not UTF-8.
    let bad = CString::new(vec![b'{', 0xff, 0xfe, b'}']).unwrap();
    let mut inst = null_mut();
    // SAFETY: valid NUL-terminated bytes.
    assert_eq!(unsafe { otel_ebpf_new(bad.as_ptr(), &mut inst) }, OTEL_EBPF_ERR_CONFIG);
    assert!(last_error().contains("UTF-8"), "{}", last_error());
    // SAFETY: valid NUL-terminated bytes, then NULL (allowed: an error code).
    unsafe {
        assert_eq!(otel_ebpf_config_validate(bad.as_ptr()), OTEL_EBPF_ERR_CONFIG);
        assert_eq!(otel_ebpf_config_validate(null()), OTEL_EBPF_ERR_NULL);
    }
    // Valid configs, partial ones included.
    for json in [
        "{}",
        "",
        r#"{"capture_size": 256, "batch": {"timeout_ms": 200}}"#,
        r#"{"selection": {"exclude": {"pids": [1]}}}"#,
    ] {
        assert_eq!(validate(json), Ok(()), "config_validate accepts {json:?}");
        let inst = new_instance(json).unwrap_or_else(|(rc, msg)| panic!("config {json:?}: {rc:?} {msg}"));
        free(inst);
    }
}

#[test]
fn last_error_truncates_and_reports_the_full_length() {
    let err = new_instance(r#"{"no_such_key": 1}"#).unwrap_err();
    assert_eq!(err.0, OTEL_EBPF_ERR_CONFIG);
    // The message is still there (last_error does not clear it).
    // SAFETY: NULL buffer asks for the length.
    let full = unsafe { otel_ebpf_last_error(null_mut(), 0) };
    assert_eq!(full, err.1.len());
    let mut small = [0x55u8; 8];
    // SAFETY: 8 writable bytes.
    let n = unsafe { otel_ebpf_last_error(small.as_mut_ptr().cast(), small.len()) };
    assert_eq!(n, full, "returns the full length, not the copied length");
    assert_eq!(small[7], 0, "NUL-terminated within buf_len");
    assert_eq!(&small[..7], &err.1.as_bytes()[..7]);
    // A zero-length buffer is not written to.
    let mut one = [0x55u8; 1];
    // SAFETY: buf_len 0: nothing may be written.
    unsafe { otel_ebpf_last_error(one.as_mut_ptr().cast(), 0) };
    assert_eq!(one[0], 0x55);
    // A success clears it.
    let inst = new_instance("{}").unwrap();
    // SAFETY: NULL buffer asks for the length.
    assert_eq!(unsafe { otel_ebpf_last_error(null_mut(), 0) }, 0);
    free(inst);
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(otel_ebpf_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn start_twice_is_a_state_error_and_stop_drains_to_stopped() {
    if !require_root() {
        return;
    }
    let inst = new_instance(r#"{"batch": {"timeout_ms": 100}}"#).unwrap();
    // SAFETY: live handle throughout until free.
    unsafe {
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_OK, "{}", last_error());
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_ERR_STATE, "second start");
        assert!(!last_error().is_empty());
        let mut batch = null_mut();
        let rc = otel_ebpf_poll(inst, 0, &mut batch);
        assert!(matches!(rc, OTEL_EBPF_TIMEOUT | OTEL_EBPF_OK), "poll while running: {rc:?}");
        if rc == OTEL_EBPF_OK {
            assert_eq!(otel_ebpf_batch_free(batch), OTEL_EBPF_OK);
        }
        assert_eq!(otel_ebpf_stop(inst), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_stop(inst), OTEL_EBPF_OK, "stopping twice is allowed");
        // Drain: whatever was pending, then STOPPED, and STOPPED again after that.
        let mut drained = 0;
        loop {
            let mut b = null_mut();
            match otel_ebpf_poll(inst, 1000, &mut b) {
                OTEL_EBPF_OK => {
                    drained += 1;
                    assert_eq!(otel_ebpf_batch_free(b), OTEL_EBPF_OK);
                    assert!(drained < 10_000, "poll after stop never reaches STOPPED");
                }
                OTEL_EBPF_STOPPED => break,
                other => panic!("poll after stop: {other:?}: {}", last_error()),
            }
        }
        let mut b = null_mut();
        assert_eq!(otel_ebpf_poll(inst, 0, &mut b), OTEL_EBPF_STOPPED, "STOPPED stays STOPPED");
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_ERR_STATE, "start after stop");
        let mut stats = otel_ebpf_stats::default();
        assert_eq!(otel_ebpf_stats_get(inst, &mut stats), OTEL_EBPF_OK, "stats after stop");
    }
    free(inst);
}

#[test]
fn batches_are_freed_once_and_outlive_their_instance() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let inst = new_instance(r#"{"batch": {"timeout_ms": 100}}"#).unwrap();
    // SAFETY: live handles until freed; stale ones are detected by contract.
    unsafe {
        assert_eq!(otel_ebpf_start(inst), OTEL_EBPF_OK, "{}", last_error());
        let mut batch = null_mut();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        // Make traffic until a trace batch arrives (the host may have its own).
        loop {
            assert!(std::time::Instant::now() < deadline, "no batch within 20s");
            let c = curl(&server.url("/batch"));
            assert_eq!(c.codes, [200]);
            match otel_ebpf_poll(inst, 500, &mut batch) {
                OTEL_EBPF_OK => break,
                OTEL_EBPF_TIMEOUT => continue,
                other => panic!("poll: {other:?}: {}", last_error()),
            }
        }
        assert!(!batch.is_null());
        assert_eq!(otel_ebpf_batch_signal(batch), OTEL_EBPF_SIGNAL_TRACES);
        let mut data = null();
        let mut len = 0usize;
        assert_eq!(otel_ebpf_batch_data(batch, null_mut(), &mut len), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_batch_data(batch, &mut data, null_mut()), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_batch_data(batch, &mut data, &mut len), OTEL_EBPF_OK);
        assert!(len > 0 && !data.is_null());
        let copy = std::slice::from_raw_parts(data, len).to_vec();

        // Freeing the instance leaves polled batches valid.
        free(inst);
        let mut data2 = null();
        let mut len2 = 0usize;
        assert_eq!(otel_ebpf_batch_data(batch, &mut data2, &mut len2), OTEL_EBPF_OK);
        assert_eq!(std::slice::from_raw_parts(data2, len2), copy.as_slice());

        assert_eq!(otel_ebpf_batch_free(batch), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_batch_free(batch), OTEL_EBPF_ERR_INVALID_HANDLE, "double free of a batch");
        assert!(last_error().contains("not live"), "{}", last_error());
        assert_eq!(otel_ebpf_batch_signal(batch), OTEL_EBPF_SIGNAL_NONE, "signal of a freed batch");
        assert_eq!(otel_ebpf_batch_data(batch, &mut data, &mut len), OTEL_EBPF_ERR_INVALID_HANDLE);
    }
}
