//! HTTP/2 and gRPC servers for the http2 suite, each started once per test
//! process on a free port and stopped when it exits (see
//! `databases::spawn_for_process_lifetime`), and the clients a user would
//! run against them, each its own process:
//!
//! - nginx (Debian) with an `http2` listener in cleartext (prior knowledge)
//!   and one over TLS (ALPN h2, OpenSSL), one process (no master), answering
//!   `/status/<code>` with that code and anything else 200;
//!   `curl --http2-prior-knowledge` and `curl --http2` (OpenSSL).
//! - Go `net/http` with h2c (`tests/go/h2c-server`: prior knowledge and
//!   `Upgrade: h2c`) and its client (`tests/go/h2c-client`, one connection,
//!   requests in sequence or all at once); the same client over Go's
//!   `crypto/tls` to `tests/go/tls-server -h2`.
//! - gRPC: `tests/go/grpc-server` and `-client` (google.golang.org/grpc),
//!   and `tests/grpc/greeter.py` (grpcio) serving and calling; the same
//!   `demo.Greeter` service.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::databases::{process_dir, spawn_for_process_lifetime};
use crate::servers::{is_listening, python};
use crate::tls::Cert;
use crate::util::{free_port, go_program, repo_root, wait_until, which};

/// A running server.
#[derive(Debug)]
pub struct H2Server {
    pub port: u16,
    pub pid: u32,
    /// Its configuration and log.
    pub dir: PathBuf,
    /// From spawn to listening.
    pub start: Duration,
}

/// nginx serving HTTP/2 in cleartext (`port`) and over TLS (`tls_port`).
#[derive(Debug)]
pub struct NginxH2 {
    pub server: H2Server,
    pub tls_port: u16,
}

impl H2Server {
    pub fn log(&self) -> String {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

/// The certificate of the TLS servers, made once per test process.
pub fn cert() -> &'static Cert {
    static CERT: OnceLock<Cert> = OnceLock::new();
    CERT.get_or_init(Cert::generate)
}

fn spawn(name: &str, mut cmd: Command, ports: &[u16], dir: PathBuf) -> H2Server {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("create log");
    cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("dup log")).stderr(log).env_remove("OTEL_SERVICE_NAME");
    let t0 = Instant::now();
    let pid = spawn_for_process_lifetime(cmd);
    let server = H2Server { port: ports[0], pid, dir, start: Duration::ZERO };
    let up = wait_until(Duration::from_secs(30), || ports.iter().all(|&p| is_listening(p)).then_some(()));
    assert!(up.is_some(), "{name} did not listen on {ports:?}:\n{}", server.log());
    H2Server { start: t0.elapsed(), ..server }
}

const NGINX_H2_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events { worker_connections 1024; }
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    default_type text/plain;
    http2_max_concurrent_streams 256;
    server {
        listen 127.0.0.1:@PORT@ http2;
        listen 127.0.0.1:@TLS_PORT@ ssl http2;
        server_name localhost;
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "hello from nginx over h2\n"; }
        location = /status/404 { return 404 "404\n"; }
        location = /status/500 { return 500; }
        location = /submit { return 201 "created\n"; }
    }
}
"#;

/// nginx with an `http2` listener in cleartext and one over TLS, started
/// once per test process.
pub fn nginx() -> &'static NginxH2 {
    static NGINX: OnceLock<NginxH2> = OnceLock::new();
    NGINX.get_or_init(|| {
        let bin = which("nginx").expect("nginx not found (Debian package nginx; run `make deps`)");
        let dir = process_dir("nginx-h2");
        let (port, tls_port) = (free_port(), free_port());
        let conf = NGINX_H2_CONF
            .replace("@DIR@", &dir.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@TLS_PORT@", &tls_port.to_string())
            .replace("@CERT@", &cert().cert().display().to_string())
            .replace("@KEY@", &cert().key().display().to_string());
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(bin);
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("error.log"));
        NginxH2 { server: spawn("nginx", cmd, &[port, tls_port], dir), tls_port }
    })
}

/// `tests/go/h2c-server`, started once per test process.
pub fn go_h2c() -> &'static H2Server {
    static SERVER: OnceLock<H2Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(go_program("h2c-server"));
        cmd.arg("-addr").arg(format!("127.0.0.1:{port}"));
        spawn("go-h2c-server", cmd, &[port], process_dir("go-h2c"))
    })
}

/// `tests/go/tls-server -h2` (HTTP/2 over Go's crypto/tls), started once per
/// test process.
pub fn go_tls_h2() -> &'static H2Server {
    static SERVER: OnceLock<H2Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(go_program("tls-server"));
        cmd.arg("-h2").arg("-addr").arg(format!("127.0.0.1:{port}"));
        cmd.arg("-cert").arg(cert().cert()).arg("-key").arg(cert().key());
        spawn("go-tls-server", cmd, &[port], process_dir("go-tls-h2"))
    })
}

/// `tests/go/grpc-server`, started once per test process.
pub fn go_grpc() -> &'static H2Server {
    static SERVER: OnceLock<H2Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(go_program("grpc-server"));
        cmd.arg("-addr").arg(format!("127.0.0.1:{port}"));
        spawn("go-grpc-server", cmd, &[port], process_dir("go-grpc"))
    })
}

/// `tests/grpc/greeter.py serve` (grpcio), started once per test process.
pub fn py_grpc() -> &'static H2Server {
    static SERVER: OnceLock<H2Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(greeter()).arg("serve").arg(port.to_string());
        spawn("py-grpc-server", cmd, &[port], process_dir("py-grpc"))
    })
}

fn greeter() -> PathBuf {
    repo_root().join("tests/grpc/greeter.py")
}

/// What one client process did: its pid and each line it printed.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub pid: u32,
    pub lines: Vec<String>,
}

/// Runs a client to its end; panics unless it succeeds.
pub fn run_client(mut cmd: Command, what: &str) -> ClientRun {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "OTEL_SERVICE_NAME"] {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait for {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed: {}\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    ClientRun { pid, lines: stdout.lines().map(str::to_string).collect() }
}

/// curl with `mode` (`--http2-prior-knowledge`, `--http2`) for one URL, and
/// `extra` arguments; its line is `<status> <local port> <http version>`.
pub fn curl_h2(mode: &str, url: &str, extra: &[&str]) -> ClientRun {
    let curl = which("curl").expect("curl not found (Debian package curl)");
    let mut cmd = Command::new(curl);
    cmd.args(["--silent", "--show-error", "--noproxy", "*", "--max-time", "10", mode, "--insecure"])
        .args(["--write-out", "%{http_code} %{local_port} %{http_version}\\n", "--output", "/dev/null"])
        .args(extra)
        .arg(url);
    run_client(cmd, &format!("curl {mode} {url}"))
}

/// `tests/go/h2c-client` with `args` (flags, then URLs): one line per
/// response, `<status> <url>`.
pub fn h2c_client(args: &[&str]) -> ClientRun {
    let mut cmd = Command::new(go_program("h2c-client"));
    cmd.args(args);
    run_client(cmd, &format!("h2c-client {args:?}"))
}

/// `tests/go/grpc-client` calling `calls` on one connection: one line per
/// call, `<call> <code>`.
pub fn go_grpc_client(port: u16, calls: &[&str]) -> ClientRun {
    let mut cmd = Command::new(go_program("grpc-client"));
    cmd.arg("-addr").arg(format!("127.0.0.1:{port}")).args(calls);
    run_client(cmd, &format!("grpc-client {calls:?}"))
}

/// `tests/grpc/greeter.py call` (grpcio) on one channel: one line per call.
pub fn py_grpc_client(port: u16, calls: &[&str]) -> ClientRun {
    let mut cmd = Command::new(python());
    cmd.arg(greeter()).arg("call").arg(format!("127.0.0.1:{port}")).args(calls);
    run_client(cmd, &format!("greeter.py call {calls:?}"))
}
