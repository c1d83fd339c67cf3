//! Real messaging servers for the Kafka, MongoDB and MQTT suites, each
//! started once per test process in a temp dir on a free port, dying with
//! the process (see `databases.rs`):
//! - Kafka: franz-go's `kfake` broker (`tests/go/kafka/broker`), with the
//!   franz-go client beside it (`tests/go/kafka/client`), both built from
//!   the Go module proxy into `target/test-bins/kafka-*-{key of their
//!   sources}`; `kcat` (Debian) and `kafka-python` (PyPI) as other clients.
//! - MongoDB: FerretDB 1.24 with its SQLite backend only, built from the Go
//!   module proxy into `target/test-bins/ferretdb-v1.24.0` (FerretDB needs
//!   its `build/version/version.txt` written before `go build`, which the
//!   module cache cannot hold, so the module is copied first); `pymongo`
//!   (PyPI).
//! - MQTT: `mosquitto` (Debian) with an anonymous listener and one that
//!   requires a password (user `app`, password `app-password`);
//!   `mosquitto_pub`/`mosquitto_sub` (Debian) and `paho-mqtt` (PyPI).
//!
//! The first Kafka or MongoDB server a test process asks for starts both
//! Go builds side by side; once built, a binary is reused by every later
//! run until its sources (or FerretDB's version) change.
//!
//! Measured on the 2-core dev machine while other builds ran (load average
//! 10-18, so indicative only): from empty Go module and build caches and an
//! empty `target/test-bins`, the whole `messaging` test file took 394 s,
//! ~350 s of it FerretDB's build (the Kafka programs, ~60 s alone, finished
//! beside it); with the binaries in `target/test-bins`, ~34 s (Kafka 13 s,
//! MQTT 8.5 s, MongoDB 6.5 s, the harness checks 5 s). kfake, FerretDB and
//! mosquitto each start in under 0.1 s.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::databases::{process_dir, run, spawn_for_process_lifetime};
use crate::util::{free_port, repo_root, target_dir, wait_until, which};

/// The FerretDB version built.
pub const FERRETDB_VERSION: &str = "v1.24.0";

/// The MQTT listener's user and password (the anonymous listener needs none).
pub const MQTT_USER: &str = "app";
pub const MQTT_PASSWORD: &str = "app-password";

/// A running messaging server.
#[derive(Debug)]
pub struct MsgServer {
    pub port: u16,
    /// MQTT only: the listener that requires a password.
    pub auth_port: Option<u16>,
    pub pid: u32,
    pub dir: PathBuf,
    /// How long building (or finding the cached build) took.
    pub build: Duration,
    /// How long starting until it accepted connections took.
    pub start: Duration,
}

/// The kfake Kafka broker, started once.
pub fn kafka() -> &'static MsgServer {
    static K: OnceLock<MsgServer> = OnceLock::new();
    K.get_or_init(start_kafka)
}

/// FerretDB (MongoDB wire protocol), started once.
pub fn ferretdb() -> &'static MsgServer {
    static F: OnceLock<MsgServer> = OnceLock::new();
    F.get_or_init(start_ferretdb)
}

/// mosquitto, started once.
pub fn mosquitto() -> &'static MsgServer {
    static M: OnceLock<MsgServer> = OnceLock::new();
    M.get_or_init(start_mosquitto)
}

fn go() -> PathBuf {
    which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"))
}

fn bin_dir() -> PathBuf {
    let dir = target_dir().join("test-bins");
    std::fs::create_dir_all(&dir).expect("create target/test-bins");
    dir
}

/// Removes the build dirs (`.kafka.PID`, `.ferretdb.PID`) of test
/// processes that ended mid-build.
fn remove_abandoned_builds() {
    let Ok(entries) = std::fs::read_dir(bin_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(".ferretdb.").or_else(|| name.strip_prefix(".kafka."));
        if pid.is_some_and(|p| p.parse::<u32>().is_ok() && !Path::new("/proc").join(p).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs a `go build`; it dies with the test process (PR_SET_PDEATHSIG
/// follows the calling thread, which waits for it), so a build started in
/// the background of a run that ends early does not linger.
fn go_build(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    run(cmd);
}

/// The Go programs of `tests/go/kafka` (broker and client), built once into
/// `target/test-bins/` under a key of their sources (`go.mod`, `go.sum`,
/// `*.go`): a later test process with the same sources builds nothing.
pub fn kafka_binaries() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let src = repo_root().join("tests/go/kafka");
        let key = sources_key(&src);
        let bins =
            (bin_dir().join(format!("kafka-broker-{key:016x}")), bin_dir().join(format!("kafka-client-{key:016x}")));
        if bins.0.exists() && bins.1.exists() {
            return bins;
        }
        let out = bin_dir().join(format!(".kafka.{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("create build dir");
        go_build(
            Command::new(go())
                .args(["build", "-trimpath", "-o"])
                .arg(format!("{}/", out.display()))
                .args(["./broker", "./client"])
                .current_dir(&src)
                .env("CGO_ENABLED", "0")
                .env("GOFLAGS", "-mod=mod"),
        );
        // Rename into place: concurrent test processes never see a half-written binary.
        std::fs::rename(out.join("broker"), &bins.0).expect("rename broker");
        std::fs::rename(out.join("client"), &bins.1).expect("rename client");
        let _ = std::fs::remove_dir_all(&out);
        bins
    })
}

/// FNV-1a over the relative paths and contents of a Go module's `go.mod`,
/// `go.sum` and `.go` files, in path order.
fn sources_key(dir: &Path) -> u64 {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "go")
                || path.file_name().is_some_and(|n| n == "go.mod" || n == "go.sum")
            {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let rel = f.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
        let body = std::fs::read(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        for b in rel.bytes().chain([0]).chain(body).chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Starts building every messaging server once, each on its own thread,
/// so a cold run downloads and compiles them side by side rather than one
/// after the other; whoever needs a build then waits for it
/// (`OnceLock::get_or_init` blocks while another thread initialises).
fn build_all_in_background() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::spawn(|| {
            kafka_binaries();
        });
        std::thread::spawn(|| {
            ferretdb_binary();
        });
    });
}

fn start_kafka() -> MsgServer {
    build_all_in_background();
    let t0 = Instant::now();
    let (broker, _) = kafka_binaries();
    let build = t0.elapsed();
    let dir = process_dir("kafka");
    let port = free_port();
    let log = dir.join("broker.log");
    let t1 = Instant::now();
    let mut cmd = Command::new(broker);
    cmd.args(["-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null());
    let pid = spawn_for_process_lifetime(cmd);
    let ready =
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log).ok().filter(|l| l.starts_with("ready")));
    assert!(ready.is_some(), "the kfake broker did not start; see {}", log.display());
    MsgServer { port, auth_port: None, pid, dir, build, start: t1.elapsed() }
}

/// Builds FerretDB into `target/test-bins/ferretdb` unless it is there.
pub fn ferretdb_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = bin_dir().join(format!("ferretdb-{FERRETDB_VERSION}"));
        if bin.exists() {
            return bin;
        }
        remove_abandoned_builds();
        let work = bin_dir().join(format!(".ferretdb.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("create build dir");
        let module = format!("github.com/FerretDB/FerretDB@{FERRETDB_VERSION}");
        let out = Command::new(go())
            .args(["mod", "download", "-json", &module])
            .current_dir(&work)
            .env("GOFLAGS", "-mod=mod")
            .output()
            .expect("run go mod download");
        assert!(out.status.success(), "go mod download {module}: {}", String::from_utf8_lossy(&out.stderr));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("go mod download -json");
        let src = info["Dir"].as_str().expect("module Dir");
        let copy = work.join("src");
        run(Command::new("cp").arg("-r").arg(src).arg(&copy));
        run(Command::new("chmod").arg("-R").arg("u+w").arg(&copy));
        std::fs::write(copy.join("build/version/version.txt"), format!("{FERRETDB_VERSION}\n")).expect("version.txt");
        let tmp = work.join("ferretdb");
        // The SQLite backend only: leaving PostgreSQL's driver out saves ~30 packages of a cold build.
        go_build(
            Command::new(go())
                .args(["build", "-trimpath", "-tags", "ferretdb_no_postgresql", "-o"])
                .arg(&tmp)
                .arg("./cmd/ferretdb")
                .current_dir(&copy)
                .env("CGO_ENABLED", "0"),
        );
        std::fs::rename(&tmp, &bin).expect("rename ferretdb");
        let _ = std::fs::remove_dir_all(&work);
        bin
    })
    .clone()
}

fn accepts(port: u16) -> Option<()> {
    TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
}

fn start_ferretdb() -> MsgServer {
    build_all_in_background();
    let t0 = Instant::now();
    let bin = ferretdb_binary();
    let build = t0.elapsed();
    let dir = process_dir("ferretdb");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("create data dir");
    let port = free_port();
    let t1 = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.arg("--handler=sqlite")
        .arg(format!("--sqlite-url=file:{}/", data.display()))
        .arg(format!("--listen-addr=127.0.0.1:{port}"))
        .args(["--telemetry=disable", "--log-level=warn", "--debug-addr=-", "--state-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("ferretdb.log")).expect("log"));
    let pid = spawn_for_process_lifetime(cmd);
    let ready = wait_until(Duration::from_secs(30), || accepts(port));
    assert!(ready.is_some(), "FerretDB did not start; see {}", dir.join("ferretdb.log").display());
    MsgServer { port, auth_port: None, pid, dir, build, start: t1.elapsed() }
}

fn start_mosquitto() -> MsgServer {
    let mosquitto = which("mosquitto").expect("mosquitto not found (Debian package mosquitto; run `make deps`)");
    let dir = process_dir("mosquitto");
    let (port, auth_port) = (free_port(), free_port());
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, "").expect("passwd");
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).expect("chmod passwd");
    let t0 = Instant::now();
    run(Command::new(which("mosquitto_passwd").expect("mosquitto_passwd"))
        .args(["-b"])
        .arg(&passwd)
        .args([MQTT_USER, MQTT_PASSWORD]));
    let build = t0.elapsed();
    // `user root`: as root, mosquitto would otherwise drop to its own user,
    // which cannot read the password file in this directory.
    let conf = format!(
        "per_listener_settings true\nuser root\n\
         listener {port} 127.0.0.1\nallow_anonymous true\n\
         listener {auth_port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        passwd.display()
    );
    std::fs::write(dir.join("mosquitto.conf"), conf).expect("mosquitto.conf");
    let t1 = Instant::now();
    let mut cmd = Command::new(mosquitto);
    cmd.arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("mosquitto.log")).expect("log"));
    let pid = spawn_for_process_lifetime(cmd);
    let ready = wait_until(Duration::from_secs(30), || accepts(port).and_then(|()| accepts(auth_port)));
    assert!(ready.is_some(), "mosquitto did not start; see {}", dir.join("mosquitto.log").display());
    MsgServer { port, auth_port: Some(auth_port), pid, dir, build, start: t1.elapsed() }
}

/// Runs the franz-go client (`tests/go/kafka/client`) against the broker:
/// `args` as its usage says (`produce N BATCH`, `consume N`, `errors`).
/// Returns its stdout; panics if it fails.
pub fn franz_client(topic: &str, group: Option<&str>, args: &[&str]) -> String {
    output(&mut franz_client_command(topic, group, args))
}

/// The franz-go client's command line (see `franz_client`), to run as the test needs.
pub fn franz_client_command(topic: &str, group: Option<&str>, args: &[&str]) -> Command {
    let (_, client) = kafka_binaries();
    let mut cmd = Command::new(client);
    cmd.args(["-brokers", &format!("127.0.0.1:{}", kafka().port), "-topic", topic]);
    if let Some(g) = group {
        cmd.args(["-group", g]);
    }
    cmd.args(args);
    cmd
}

/// Runs a command to completion; its stdout, or a panic with its output.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
