//! Small utilities: privileges, free ports, temp dirs, deadlines, paths.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a test waits for telemetry that should arrive (batching included).
pub const WAIT: Duration = Duration::from_secs(20);

/// Loading eBPF programs needs root (CAP_BPF + CAP_PERFMON + tracefs access).
/// Panics with a readable message otherwise, so a non-root run fails loudly
/// rather than passing vacuously. `OTEL_EBPF_TESTS_SKIP_PRIVILEGED=1` turns the
/// panic into a skip (returns false) for machines that cannot load probes.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("OTEL_EBPF_TESTS_SKIP_PRIVILEGED").is_some_and(|v| v == "1") {
        eprintln!("skipped: needs root to load eBPF probes (OTEL_EBPF_TESTS_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!(
        "these tests load eBPF probes and must run as root: \
         sudo -E cargo test -p integration-tests -- --test-threads=1 \
         (or set OTEL_EBPF_TESTS_SKIP_PRIVILEGED=1 to skip them)"
    );
}

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port that is free on both 127.0.0.1 and [::1] right now and was not
/// handed out before in this process.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(v4) = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let port = v4.local_addr().expect("local_addr").port();
        let v6_free = TcpListener::bind(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0)).is_ok();
        drop(v4);
        let mut seen = HANDED_OUT.lock().unwrap();
        if v6_free && seen.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 and [::1]");
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo_root().join(p) })
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `tests/go/<name>` built once per test process into target/test-bins
/// (with its symbol table and DWARF: what the Go TLS probes need).
pub fn go_program(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, bin)) = built.iter().find(|(n, _)| n == name) {
        return bin.clone();
    }
    let out_dir = target_dir().join("test-bins");
    std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
    let bin = out_dir.join(format!("go-{name}"));
    // A private name, then rename: concurrent builds never see a half-written binary.
    let tmp = out_dir.join(format!(".go-{name}.{}", std::process::id()));
    let go = which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"));
    let out = std::process::Command::new(&go)
        .args(["build", "-trimpath", "-o"])
        .arg(&tmp)
        .arg(format!("./{name}"))
        .current_dir(repo_root().join("tests/go"))
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (install Go to build tests/go/{name}): {e}", go.display()));
    assert!(
        out.status.success(),
        "go build tests/go/{name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &bin).expect("rename the Go binary");
    built.push((name.to_string(), bin.clone()));
    bin
}

/// Finds an executable on PATH, then in the sbin directories (nginx lives in
/// /usr/sbin, which is not on every user's PATH).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "otel-ebpf-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A token unlikely to appear in anybody else's traffic on this host.
pub fn unique_token(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// True when `haystack` contains `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Stops a child process we started: SIGTERM, then SIGKILL if it is still
/// there after 3 s; always reaped.
pub fn stop_child(child: &mut std::process::Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    if wait_until(Duration::from_secs(3), || child.try_wait().ok().flatten()).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `tests/c/<name>.c` compiled (with `cc`, or `$CC`) into target/test-bins/<name>.
pub fn c_program(name: &str, flags: &[&str]) -> PathBuf {
    let out_dir = target_dir().join("test-bins");
    std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
    let bin = out_dir.join(name);
    let tmp = out_dir.join(format!(".{name}.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let src = repo_root().join(format!("tests/c/{name}.c"));
    let out = std::process::Command::new(&cc)
        .args(["-O1", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(flags)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc} (install a C compiler): {e}"));
    assert!(out.status.success(), "building {} failed:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &bin).unwrap_or_else(|e| panic!("rename {}: {e}", bin.display()));
    bin
}
