//! Without the needed capabilities, start fails with a message naming exactly
//! what is missing; with the documented minimal set (CAP_BPF, CAP_PERFMON,
//! CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH) and nothing else, it starts. Each case
//! re-runs this test binary under `capsh` with a reduced bounding set.

use std::ffi::CString;
use std::process::Command;
use std::ptr::null_mut;

use integration_tests::receiver::last_error;
use integration_tests::require_root;
use otel_ebpf::otel_ebpf_result::*;
use otel_ebpf::*;

const CHILD_ENV: &str = "OTEL_EBPF_PRIVILEGES_CHILD";
const MINIMAL: &[&str] = &["cap_bpf", "cap_perfmon", "cap_sys_ptrace", "cap_dac_read_search"];

/// Runs in the child: create and start, print the outcome.
#[test]
fn child_start() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cfg = CString::new("{}").unwrap();
    let mut inst = null_mut();
    // SAFETY: valid string and out pointer.
    assert_eq!(unsafe { otel_ebpf_new(cfg.as_ptr(), &mut inst) }, OTEL_EBPF_OK);
    // SAFETY: a live handle.
    let rc = unsafe { otel_ebpf_start(inst) };
    println!("CHILD-RESULT rc={rc:?} error={}", last_error());
    // SAFETY: a live handle.
    unsafe { otel_ebpf_free(inst) };
}

fn all_caps() -> Vec<String> {
    let out = Command::new("capsh").arg("--print").output().expect("capsh (libcap2-bin) is installed by make deps");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("Bounding set =")).expect("capsh prints the bounding set");
    line.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

/// Runs `child_start` with `drop` removed from the bounding set; returns its result line.
fn start_without(drop: &[String]) -> String {
    let me = std::env::current_exe().unwrap();
    let cmd = format!("exec {} --exact child_start --nocapture --test-threads=1", me.display());
    let out = Command::new("capsh")
        .arg(format!("--drop={}", drop.join(",")))
        .args(["--", "-c", &cmd])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The test harness may print "test child_start ... " on the same line.
    stdout
        .lines()
        .find_map(|l| l.find("CHILD-RESULT").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| panic!("child printed no result: {stdout} {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn missing_bpf_and_perfmon_are_named() {
    if !require_root() || std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let r = start_without(&["cap_sys_admin".into(), "cap_bpf".into(), "cap_perfmon".into()]);
    assert!(r.contains("OTEL_EBPF_ERR_START"), "{r}");
    assert!(r.contains("CAP_BPF") && r.contains("CAP_PERFMON"), "{r}");
    assert!(!r.contains("CAP_SYS_PTRACE"), "only what is missing is named: {r}");
}

#[test]
fn missing_ptrace_is_named() {
    if !require_root() || std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let r = start_without(&["cap_sys_ptrace".into()]);
    assert!(r.contains("OTEL_EBPF_ERR_START") && r.contains("CAP_SYS_PTRACE"), "{r}");
    assert!(!r.contains("CAP_BPF,") && !r.contains("CAP_PERFMON"), "only what is missing is named: {r}");
}

#[test]
fn documented_minimal_set_is_enough() {
    if !require_root() || std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let drop: Vec<String> = all_caps().into_iter().filter(|c| !MINIMAL.contains(&c.as_str())).collect();
    assert!(drop.iter().any(|c| c == "cap_sys_admin"), "the test must drop CAP_SYS_ADMIN: {drop:?}");
    let r = start_without(&drop);
    assert!(r.contains("rc=OTEL_EBPF_OK"), "{r}");
}
