//! Start-up checks: each failure names exactly what is missing, so an
//! operator does not have to decode a verifier log or an EPERM.

use std::fs;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "insufficient privileges: loading eBPF probes needs root or the capabilities {missing} \
         (effective capabilities: {have:#x}); run as root or grant them, e.g. \
         `setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep <binary>`"
    )]
    Privileges { missing: String, have: u64 },
    #[error("the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): a kernel built with CONFIG_DEBUG_INFO_BTF=y is required")]
    NoBtf,
    #[error("kernel {release} is too old: Linux 5.15 or newer is needed (eBPF ring buffers, atomic fetch-and-add, bpf_task_pt_regs)")]
    KernelTooOld { release: String },
    #[error("tracefs is not mounted at /sys/kernel/tracing and mounting it failed ({0}); mount it with `mount -t tracefs nodev /sys/kernel/tracing`")]
    NoTracefs(String),
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Runs every check; the first failure is returned.
pub fn preflight() -> Result<(), PreflightError> {
    check_privileges()?;
    check_kernel_version()?;
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(PreflightError::NoBtf);
    }
    ensure_tracefs()?;
    raise_memlock_limit();
    Ok(())
}

fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn check_privileges() -> Result<(), PreflightError> {
    let have = effective_caps();
    let has = |cap: u32| have & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    // CAP_SYS_ADMIN stands in for BPF+PERFMON on kernels that predate them.
    if !has(CAP_SYS_ADMIN) {
        if !has(CAP_BPF) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            missing.push("CAP_PERFMON");
        }
    }
    // Reading other processes' /proc/<pid>/environ and exe for their identity.
    if !has(CAP_SYS_PTRACE) {
        missing.push("CAP_SYS_PTRACE");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::Privileges { missing: missing.join(", "), have })
    }
}

fn check_kernel_version() -> Result<(), PreflightError> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim().to_string();
    if !kernel_new_enough(&release) {
        return Err(PreflightError::KernelTooOld { release });
    }
    Ok(())
}

/// 5.15: `bpf_task_pt_regs`, with which the data path reads a syscall's
/// arguments at its exit (5.12 brought the atomics, 5.8 ring buffers).
fn kernel_new_enough(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 15)
}

fn ensure_tracefs() -> Result<(), PreflightError> {
    for p in ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"] {
        if Path::new(p).is_dir() {
            return Ok(());
        }
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .output()
        .map_err(|e| PreflightError::NoTracefs(e.to_string()))?;
    if out.status.success() && Path::new("/sys/kernel/tracing/events").is_dir() {
        Ok(())
    } else {
        Err(PreflightError::NoTracefs(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it (best effort).
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a valid, fully initialised rlimit struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

#[cfg(test)]
mod tests {
    use super::kernel_new_enough;

    #[test]
    fn kernels_from_5_15_are_new_enough() {
        for ok in ["5.15.0-91-generic", "6.1.0-27-amd64", "6.18.44-fc-v657", "10.0"] {
            assert!(kernel_new_enough(ok), "{ok}");
        }
        for old in ["5.14.21-150400.24-default", "5.10.0-33-amd64", "4.18.0-553.el8_10.x86_64", "", "garbage"] {
            assert!(!kernel_new_enough(old), "{old}");
        }
    }
}
