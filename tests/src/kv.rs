//! Real key/value servers for the Redis and memcached suites: redis-server
//! and memcached from Debian's packages (`make deps`), each started once per
//! test process on a free port (no systemd) and stopped when the process
//! exits (see `databases::spawn_for_process_lifetime`); and the clients a
//! user would run against them: redis-cli, Python with redis-py or
//! pymemcache, and go-redis (`tests/go/redis`, built from the Go module
//! proxy into `target/test-bins/` once per test process), each its own
//! process.
//!
//! Redis has a user `alice` (password `REDIS_PASSWORD`) besides the default
//! user (no password), and `DEBUG` enabled for local connections (`DEBUG
//! PROTOCOL` produces every RESP3 type). memcached accepts items up to its
//! default 1 MB.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::databases::{process_dir, run, spawn_for_process_lifetime};
use crate::servers::{is_listening, python};
use crate::util::{free_port, repo_root, target_dir, wait_until, which};

/// The ACL user the AUTH tests log in as, and its password.
pub const REDIS_USER: &str = "alice";
pub const REDIS_PASSWORD: &str = "s3cret-pass";

/// A running key/value server.
#[derive(Debug)]
pub struct KvServer {
    pub port: u16,
    pub pid: u32,
    /// Configuration, data and log.
    pub dir: PathBuf,
    /// From spawn to listening.
    pub start: Duration,
}

/// redis-server, started once per test process.
pub fn redis() -> &'static KvServer {
    static REDIS: OnceLock<KvServer> = OnceLock::new();
    REDIS.get_or_init(start_redis)
}

/// memcached, started once per test process.
pub fn memcached() -> &'static KvServer {
    static MEMCACHED: OnceLock<KvServer> = OnceLock::new();
    MEMCACHED.get_or_init(start_memcached)
}

fn start_redis() -> KvServer {
    let bin = which("redis-server").expect("redis-server not found (Debian package redis-server; run `make deps`)");
    let dir = process_dir("redis");
    let port = free_port();
    let conf = dir.join("redis.conf");
    // Users come from the configuration, so that setting them up opens no
    // connection that a receiver running meanwhile would trace.
    let text = format!(
        "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/redis.log\ndaemonize no\nsave \"\"\nappendonly no\n\
         enable-debug-command local\n\
         user default on nopass ~* &* +@all\nuser {REDIS_USER} on >{REDIS_PASSWORD} ~* &* +@all\n",
        dir = dir.display()
    );
    std::fs::write(&conf, text).expect("write redis.conf");
    let mut cmd = Command::new(bin);
    cmd.arg(&conf).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let t0 = Instant::now();
    let pid = spawn_for_process_lifetime(cmd);
    let up = wait_until(Duration::from_secs(20), || is_listening(port).then_some(()));
    assert!(up.is_some(), "redis-server did not listen on {port}; see {}", dir.join("redis.log").display());
    KvServer { port, pid, dir, start: t0.elapsed() }
}

fn start_memcached() -> KvServer {
    let bin = which("memcached").expect("memcached not found (Debian package memcached; run `make deps`)");
    let dir = process_dir("memcached");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "64", "-t", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("memcached.log")).expect("log"));
    // memcached refuses to run as root. It would switch users itself (`-u`),
    // but that clears the death signal that ties it to this process: it
    // starts as `nobody` instead.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = crate::databases::user_ids("nobody");
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    }
    let t0 = Instant::now();
    let pid = spawn_for_process_lifetime(cmd);
    let up = wait_until(Duration::from_secs(20), || is_listening(port).then_some(()));
    assert!(up.is_some(), "memcached did not listen on {port}; see {}", dir.join("memcached.log").display());
    KvServer { port, pid, dir, start: t0.elapsed() }
}

/// What one client process did.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub pid: u32,
    pub stdout: String,
}

fn run_client(mut cmd: Command, stdin: Option<&[u8]>, what: &str) -> ClientRun {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("OTEL_SERVICE_NAME");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).unwrap_or_else(|e| panic!("write to {what}: {e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait for {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed: {}\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    ClientRun { pid, stdout }
}

/// `redis-cli -p PORT ARGS...`, reading commands from `stdin` when given
/// (then one command per line, each reply awaited; `--pipe` among ARGS
/// streams RESP instead).
pub fn redis_cli(port: u16, args: &[&str], stdin: Option<&[u8]>) -> ClientRun {
    let cli = which("redis-cli").expect("redis-cli not found (Debian package redis-tools; run `make deps`)");
    let mut cmd = Command::new(cli);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    run_client(cmd, stdin, &format!("redis-cli {args:?}"))
}

/// A Python client: `script` run by python3 with `args` (sys.argv[1:]).
/// Any script; the kv suite's redis-py and pymemcache come from `make deps`.
pub fn python_client(script: &str, args: &[String]) -> ClientRun {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).args(args);
    run_client(cmd, None, "python3 client")
}

/// The go-redis client of `tests/go/redis`, built once per test process
/// (`go build` skips what is up to date; the first build downloads
/// go-redis from the module proxy).
pub fn go_redis_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = target_dir().join("test-bins");
        std::fs::create_dir_all(&dir).expect("create target/test-bins");
        let tmp = dir.join(format!(".go-redis.{}", std::process::id()));
        let go = which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"));
        run(Command::new(go)
            .args(["build", "-trimpath", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(repo_root().join("tests/go/redis"))
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod"));
        // Renamed into place: concurrent test processes never run a half-written binary.
        let bin = dir.join("go-redis-client");
        std::fs::rename(&tmp, &bin).expect("rename go-redis-client");
        bin
    })
}

/// The go-redis client against `port`: SET, GET, a miss, an INCR error,
/// another miss on one connection, then a pipeline of `n` INCRs on `key`'s
/// counter on a second one (go-redis's pipeline pool).
pub fn go_redis(port: u16, key: &str, n: usize) -> ClientRun {
    let mut cmd = Command::new(go_redis_binary());
    cmd.args(["-addr", &format!("127.0.0.1:{port}"), "-key", key, "-n", &n.to_string()]);
    run_client(cmd, None, "go-redis client")
}
