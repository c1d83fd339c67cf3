//! Limits and ABI growth of the C API, called as C calls it (no root needed:
//! nothing here starts an instance).

use std::ffi::CString;
use std::mem::size_of;
use std::ptr::{null, null_mut};

use otel_ebpf::otel_ebpf_result::*;
use otel_ebpf::*;

fn last_error() -> String {
    let mut buf = vec![0u8; 8192];
    // SAFETY: buf has buf.len() writable bytes.
    let n = unsafe { otel_ebpf_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(n.min(buf.len() - 1));
    String::from_utf8_lossy(&buf).into_owned()
}

/// `{` + spaces + `}`: valid JSON of exactly `len` bytes.
fn blank_config(len: usize) -> CString {
    CString::new(format!("{{{}}}", " ".repeat(len - 2))).unwrap()
}

#[test]
fn config_of_exactly_the_maximum_size_is_accepted_one_byte_more_is_not() {
    let at = blank_config(OTEL_EBPF_MAX_CONFIG_BYTES);
    // SAFETY: NUL-terminated strings; a writable out pointer.
    unsafe {
        assert_eq!(otel_ebpf_config_validate(at.as_ptr()), OTEL_EBPF_OK, "{}", last_error());
        let mut inst = null_mut();
        assert_eq!(otel_ebpf_new(at.as_ptr(), &mut inst), OTEL_EBPF_OK, "{}", last_error());
        assert_eq!(otel_ebpf_free(inst), OTEL_EBPF_OK);

        let over = blank_config(OTEL_EBPF_MAX_CONFIG_BYTES + 1);
        assert_eq!(otel_ebpf_config_validate(over.as_ptr()), OTEL_EBPF_ERR_CONFIG);
        let msg = last_error();
        assert!(msg.contains("4194305 bytes of JSON: at most 4194304 (4 MiB)"), "{msg}");
        let mut inst = null_mut();
        assert_eq!(otel_ebpf_new(over.as_ptr(), &mut inst), OTEL_EBPF_ERR_CONFIG);
        assert!(inst.is_null());
        // Not even read: invalid UTF-8 past the limit is refused for its size.
        let mut garbage = vec![0xfe_u8; OTEL_EBPF_MAX_CONFIG_BYTES + 1];
        garbage.push(0);
        assert_eq!(otel_ebpf_config_validate(garbage.as_ptr().cast()), OTEL_EBPF_ERR_CONFIG);
        assert!(last_error().contains("at most 4194304"), "{}", last_error());
    }
}

#[test]
fn list_limits_are_config_errors_naming_the_key() {
    let pids = |n: u32| (1..=n).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    for (json, ok, needle) in [
        (format!(r#"{{"selection":{{"exclude":{{"pids":[{}]}}}}}}"#, pids(65_536)), true, ""),
        (
            format!(r#"{{"selection":{{"exclude":{{"pids":[{}]}}}}}}"#, pids(65_537)),
            false,
            "selection.exclude.pids has 65537 entries: at most 65536",
        ),
    ] {
        let c = CString::new(json).unwrap();
        // SAFETY: a NUL-terminated string.
        let rc = unsafe { otel_ebpf_config_validate(c.as_ptr()) };
        if ok {
            assert_eq!(rc, OTEL_EBPF_OK, "{}", last_error());
        } else {
            assert_eq!(rc, OTEL_EBPF_ERR_CONFIG);
            assert!(last_error().contains(needle), "{}", last_error());
        }
    }
}

#[test]
fn stats_struct_grows_at_its_end_and_writes_never_exceed_the_given_size() {
    assert_eq!(OTEL_EBPF_STATS_V1_SIZE, 6 * 8);
    assert_eq!(size_of::<otel_ebpf_stats>(), 16 * 8);
    let cfg = CString::new("{}").unwrap();
    let mut inst = null_mut();
    // SAFETY: valid pointers throughout; the buffers are as large as the sizes passed.
    unsafe {
        assert_eq!(otel_ebpf_new(cfg.as_ptr(), &mut inst), OTEL_EBPF_OK, "{}", last_error());
        let full = size_of::<otel_ebpf_stats>();
        // A struct as an older or newer caller would have it, full of 0xAA.
        for size in [0, 8, OTEL_EBPF_STATS_V1_SIZE, full, full + 64] {
            let mut buf = vec![0xAA_u8; full + 64];
            assert_eq!(otel_ebpf_stats_get_sized(inst, buf.as_mut_ptr().cast(), size), OTEL_EBPF_OK);
            let written = size.min(full);
            assert!(buf[..written].iter().all(|&b| b == 0), "size {size}: a fresh instance counts zeros");
            assert!(buf[written..].iter().all(|&b| b == 0xAA), "size {size}: wrote past {written} bytes");
        }
        let mut buf = vec![0xAA_u8; full];
        assert_eq!(otel_ebpf_stats_get(inst, buf.as_mut_ptr().cast()), OTEL_EBPF_OK);
        assert!(buf[..OTEL_EBPF_STATS_V1_SIZE].iter().all(|&b| b == 0));
        assert!(buf[OTEL_EBPF_STATS_V1_SIZE..].iter().all(|&b| b == 0xAA), "stats_get writes the v1 struct only");

        let mut s = otel_ebpf_stats::default();
        assert_eq!(otel_ebpf_stats_get_sized(null(), &mut s, full), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_stats_get_sized(inst, null_mut(), full), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_free(inst), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_stats_get_sized(inst, &mut s, full), OTEL_EBPF_ERR_INVALID_HANDLE);
    }
}
