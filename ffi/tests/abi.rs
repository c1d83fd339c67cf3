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
            "selection.exclude.pids: has 65537 entries: at most 65536 are allowed",
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

/// A static string the library returns, parsed.
fn static_json(p: *const std::os::raw::c_char) -> serde_json::Value {
    assert!(!p.is_null());
    // SAFETY: the library returns static NUL-terminated strings.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_str().unwrap();
    serde_json::from_str(s).unwrap()
}

#[test]
fn defaults_and_keys_are_the_schemas() {
    let defaults = static_json(otel_ebpf_config_defaults());
    assert_eq!(defaults, serde_json::to_value(ebpf_core::Config::default()).unwrap());
    assert_eq!(defaults["batch"]["timeout_ms"], 1000);
    let keys = static_json(otel_ebpf_config_keys());
    assert_eq!(keys, serde_json::to_value(ebpf_core::config::schema::keys()).unwrap());
    let capture = keys.as_array().unwrap().iter().find(|k| k["key"] == "capture_size").unwrap();
    assert_eq!(
        (&capture["type"], &capture["unit"], &capture["default"], &capture["minimum"], &capture["maximum"]),
        (&"integer".into(), &"bytes".into(), &1024.into(), &1.into(), &4096.into())
    );
    // Static: the same pointer every time.
    assert_eq!(otel_ebpf_config_keys(), otel_ebpf_config_keys());
}

/// Calls `otel_ebpf_config_problems` with a buffer of `cap` bytes.
fn problems(json: &str, cap: usize) -> (otel_ebpf_result, usize, Vec<u8>) {
    let c = CString::new(json).unwrap();
    let mut buf = vec![0xAA_u8; cap];
    let mut len = usize::MAX;
    let ptr = if cap == 0 { null_mut() } else { buf.as_mut_ptr().cast() };
    // SAFETY: a NUL-terminated string, `cap` writable bytes (or NULL), a writable length.
    let rc = unsafe { otel_ebpf_config_problems(c.as_ptr(), ptr, cap, &mut len) };
    (rc, len, buf)
}

#[test]
fn config_problems_are_listed_with_their_keys() {
    let json = r#"{"capture_size": 0, "metrics": {"temporality": "sometimes"}, "bogus": 1}"#;
    let (rc, len, _) = problems(json, 0);
    assert_eq!(rc, OTEL_EBPF_ERR_CONFIG);
    // Too small by one (no room for the NUL): left empty, length given.
    let (rc, len2, buf) = problems(json, len);
    assert_eq!((rc, len2, buf[0]), (OTEL_EBPF_ERR_CONFIG, len, 0));
    assert!(buf[1..].iter().all(|&b| b == 0xAA), "wrote past the NUL of an empty answer");
    let (rc, _, buf) = problems(json, len + 1);
    assert_eq!(rc, OTEL_EBPF_ERR_CONFIG);
    assert_eq!(buf[len], 0);
    let list: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
    assert_eq!(
        list,
        serde_json::json!([
            {"key": "bogus", "message": list[0]["message"]},
            {"key": "capture_size", "message": "must be between 1 bytes and 4096 bytes, not 0 bytes"},
            {"key": "metrics.temporality", "message": r#"must be one of "cumulative", "delta", not "sometimes""#},
        ])
    );
    assert!(last_error().contains("3 problems: bogus: unknown key"), "{}", last_error());

    let (rc, len, buf) = problems("{}", 16);
    assert_eq!((rc, len, &buf[..3]), (OTEL_EBPF_OK, 2, &b"[]\0"[..]));
    assert_eq!(last_error(), "");
    // The document itself: an empty key.
    let (rc, len, buf) = problems("[1]", 4096);
    assert_eq!(rc, OTEL_EBPF_ERR_CONFIG);
    let list: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
    assert_eq!(list, serde_json::json!([{"key": "", "message": "the top level must be a JSON object"}]));

    let mut len = 0;
    // SAFETY: NULL arguments are refused before anything is read.
    unsafe {
        assert_eq!(otel_ebpf_config_problems(null(), null_mut(), 0, &mut len), OTEL_EBPF_ERR_NULL);
        let c = CString::new("{}").unwrap();
        assert_eq!(otel_ebpf_config_problems(c.as_ptr(), null_mut(), 0, null_mut()), OTEL_EBPF_ERR_NULL);
    }
}

/// The C struct's fields, as the committed header declares them.
fn header_stats_fields() -> Vec<String> {
    let header = include_str!("../include/otel_ebpf.h");
    let start = header.find("typedef struct otel_ebpf_stats {").unwrap();
    let end = start + header[start..].find("} otel_ebpf_stats;").unwrap();
    header[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uint64_t ")?.strip_suffix(';').map(str::to_string))
        .collect()
}

#[test]
fn counters_are_the_lists_and_the_struct_is_its_first_ones() {
    let list = static_json(otel_ebpf_counters());
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let core: Vec<&str> = ebpf_core::stats::COUNTERS.iter().map(|c| c.name).collect();
    assert_eq!(names, core);
    let fields = header_stats_fields();
    assert_eq!(fields.len(), size_of::<otel_ebpf_stats>() / 8);
    assert_eq!(fields, names[..fields.len()], "otel_ebpf_stats must be the first counters, in their order");
    let first = &list[0];
    assert_eq!(
        (&first["kind"], &first["unit"], &first["metric"], &first["description"]),
        (
            &"counter".into(),
            &"{event}".into(),
            &"ebpf_receiver.events.read".into(),
            &"Events read from the kernel ring buffers.".into()
        )
    );

    let cfg = CString::new("{}").unwrap();
    let mut inst = null_mut();
    // SAFETY: valid pointers throughout; buffers as large as the lengths passed.
    unsafe {
        assert_eq!(otel_ebpf_new(cfg.as_ptr(), &mut inst), OTEL_EBPF_OK, "{}", last_error());
        let count = names.len();
        for len in [0, 1, count, count + 3] {
            let mut values = vec![u64::MAX; count + 3];
            let mut n = 0;
            let ptr = if len == 0 { null_mut() } else { values.as_mut_ptr() };
            assert_eq!(otel_ebpf_counters_get(inst, ptr, len, &mut n), OTEL_EBPF_OK, "{}", last_error());
            assert_eq!(n, count);
            let written = len.min(count);
            assert!(values[..written].iter().all(|&v| v == 0), "a fresh instance counts zeros");
            assert!(values[written..].iter().all(|&v| v == u64::MAX), "len {len}: wrote past {written} values");
        }
        let mut v = [0u64; 1];
        assert_eq!(otel_ebpf_counters_get(inst, v.as_mut_ptr(), 1, null_mut()), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_counters_get(inst, null_mut(), 1, null_mut()), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_counters_get(null(), v.as_mut_ptr(), 1, null_mut()), OTEL_EBPF_ERR_NULL);
        assert_eq!(otel_ebpf_free(inst), OTEL_EBPF_OK);
        assert_eq!(otel_ebpf_counters_get(inst, v.as_mut_ptr(), 1, null_mut()), OTEL_EBPF_ERR_INVALID_HANDLE);
    }
}
