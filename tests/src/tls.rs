//! HTTPS servers for the TLS tests: a self-signed certificate, the stdlib
//! Python server behind `ssl` (optionally importing `ssl` late, optionally
//! with a private copy of libssl), and nginx with a TLS server block next to a
//! plain one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::servers::{is_listening, python};
use crate::span::SpanRec;
use crate::util::{free_port, repo_root, stop_child, wait_until, which, TempDir};

/// A self-signed certificate for `localhost`, in its own directory.
#[derive(Debug)]
pub struct Cert {
    dir: TempDir,
}

impl Cert {
    /// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1`.
    pub fn generate() -> Self {
        let dir = TempDir::new("cert");
        let openssl = which("openssl").expect("openssl not found (install the Debian package openssl)");
        let out = Command::new(openssl)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stdin(Stdio::null())
            .output()
            .expect("run openssl req");
        assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
        Self { dir }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// A running HTTPS server; killed and reaped on drop.
#[derive(Debug)]
pub struct TlsServer {
    pub port: u16,
    /// nginx only: the plain-HTTP port of the same server.
    pub plain_port: Option<u16>,
    child: Child,
    dir: TempDir,
}

/// examples/python-server/server.py behind `ssl`, optionally importing `ssl`
/// (which loads libssl) only after a delay, as applications importing it on
/// first use do.
const PY_TLS_SERVER: &str = r#"
import sys, time
sys.path.insert(0, sys.argv[1])
host, port, cert, key, delay = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6])
import server
if delay > 0:
    time.sleep(delay)
import ssl
httpd = server.Server((host, port), server.Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(f"python-tls-server: listening on {host}:{port}", flush=True)
httpd.serve_forever()
"#;

impl TlsServer {
    /// The stdlib Python server over TLS on 127.0.0.1. `import_delay`: how
    /// long it runs before importing `ssl`; `libssl_dir`: a directory put
    /// first on `LD_LIBRARY_PATH` (a private copy of libssl).
    pub fn python(cert: &Cert, import_delay: Duration, libssl_dir: Option<&Path>) -> Self {
        let port = free_port();
        let dir = TempDir::new("pytls");
        let mut cmd = Command::new(python());
        cmd.arg("-u")
            .arg("-c")
            .arg(PY_TLS_SERVER)
            .arg(repo_root().join("examples/python-server"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(cert.cert())
            .arg(cert.key())
            .arg(format!("{:.3}", import_delay.as_secs_f64()));
        if let Some(d) = libssl_dir {
            cmd.env("LD_LIBRARY_PATH", d);
        }
        Self::spawn(cmd, port, None, dir, Duration::from_secs(20) + import_delay)
    }

    /// nginx with two server blocks answering the same locations: plain HTTP
    /// on `plain_port` and TLS on `port`.
    pub fn nginx(cert: &Cert) -> Self {
        let nginx = which("nginx").expect("nginx not found (install the Debian package nginx, or run `make deps`)");
        let (port, plain) = (free_port(), free_port());
        let dir = TempDir::new("nginxtls");
        let conf = NGINX_TLS_CONF
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@TLS_PORT@", &port.to_string())
            .replace("@PORT@", &plain.to_string())
            .replace("@CERT@", &cert.cert().display().to_string())
            .replace("@KEY@", &cert.key().display().to_string());
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(nginx);
        cmd.arg("-p").arg(dir.path()).arg("-c").arg(&conf_path).arg("-e").arg(dir.path().join("error.log"));
        let server = Self::spawn(cmd, port, Some(plain), dir, Duration::from_secs(20));
        let ok = wait_until(Duration::from_secs(10), || is_listening(plain).then_some(()));
        assert!(ok.is_some(), "nginx did not listen on its plain port {plain}:\n{}", server.log());
        server
    }

    fn spawn(mut cmd: Command, port: u16, plain_port: Option<u16>, dir: TempDir, wait: Duration) -> Self {
        let log = File::create(dir.path().join("server.log")).expect("create server log");
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("dup log")).stderr(log);
        cmd.env_remove("OTEL_SERVICE_NAME");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let mut server = Self { port, plain_port, child, dir };
        let listening = wait_until(wait, || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("TLS server exited with {status} before listening:\n{}", server.log());
            }
            is_listening(port).then_some(())
        });
        assert!(listening.is_some(), "TLS server did not listen on {port} within {wait:?}:\n{}", server.log());
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// `http://127.0.0.1:<plain port><path>` (nginx).
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.plain_port.expect("a server with a plain port"))
    }

    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        if let Ok(e) = std::fs::read_to_string(self.dir.path().join("error.log")) {
            s.push_str(&e);
        }
        s
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

const NGINX_TLS_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events { worker_connections 256; }
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    keepalive_timeout 65s;
    default_type text/plain;
    server {
        listen 127.0.0.1:@PORT@;
        listen 127.0.0.1:@TLS_PORT@ ssl;
        server_name localhost;
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "Hello from nginx!\n"; }
        location = /status/404 { return 404 "404\n"; }
        location = /status/500 { return 500; }
    }
}
"#;

/// The directory of a private copy of the system's libssl (another inode, so
/// not instrumented at start: it must be discovered when a process loads it).
pub fn libssl_copy() -> Option<TempDir> {
    let src = ["/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let dir = TempDir::new("libssl");
    std::fs::copy(&src, dir.path().join("libssl.so.3")).expect("copy libssl.so.3");
    Some(dir)
}

/// True when `pid` maps a file under `dir` whose name starts with `libssl`.
pub fn maps_libssl_from(pid: u32, dir: &Path) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .is_ok_and(|m| m.lines().any(|l| l.contains(&format!("{}/libssl", dir.display()))))
}

/// The checks every span of an HTTPS exchange must pass, beyond the plain
/// HTTP ones: `url.scheme` https (servers), `url.full` https://... (clients).
pub fn assert_https(span: &SpanRec, port: u16, path: &str) {
    let d = span.describe();
    if span.is_server() {
        assert_eq!(span.str_attr("url.scheme"), Some("https"), "url.scheme of a TLS server span: {d}");
    } else {
        let want = format!("https://127.0.0.1:{port}{path}");
        assert_eq!(span.str_attr("url.full"), Some(want.as_str()), "url.full of a TLS client span: {d}");
        assert_eq!(span.str_attr("url.scheme"), None, "client spans carry the scheme in url.full: {d}");
    }
}

/// A Python HTTPS client on one keep-alive connection: it sleeps `delay`,
/// imports `ssl`, completes the TLS handshake, sleeps `pause`, then sends its
/// GETs. Started before the receiver with a private libssl, its handshake is
/// seen at the socket (ciphertext) before the library is instrumented.
#[derive(Debug)]
pub struct PyTlsClient {
    child: Child,
}

/// What [`PyTlsClient`] did.
#[derive(Debug, Clone)]
pub struct PyTlsResult {
    pub pid: u32,
    pub local_port: u16,
    pub codes: Vec<u16>,
    /// When it had imported `ssl` (so loaded libssl) and was about to connect.
    pub imported_at: std::time::SystemTime,
}

const PY_TLS_CLIENT: &str = r#"
import json, sys, time
host, port, delay, pause, paths = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
time.sleep(delay)
import ssl, http.client
conn = http.client.HTTPSConnection(host, port, timeout=10, context=ssl._create_unverified_context())
imported_at = time.time()
conn.connect()
time.sleep(pause)
codes = []
for p in paths:
    conn.request("GET", p)
    r = conn.getresponse()
    r.read()
    codes.append(r.status)
print(json.dumps({"local_port": conn.sock.getsockname()[1], "codes": codes, "imported_at": imported_at}))
conn.close()
"#;

impl PyTlsClient {
    pub fn spawn(port: u16, paths: &[&str], delay: Duration, pause: Duration, libssl_dir: Option<&Path>) -> Self {
        let mut cmd = Command::new(python());
        cmd.arg("-c")
            .arg(PY_TLS_CLIENT)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(format!("{:.3}", delay.as_secs_f64()))
            .arg(format!("{:.3}", pause.as_secs_f64()))
            .args(paths);
        if let Some(d) = libssl_dir {
            cmd.env("LD_LIBRARY_PATH", d);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.env_remove("OTEL_SERVICE_NAME");
        Self { child: cmd.spawn().expect("spawn the python TLS client") }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to finish; panics when it failed.
    pub fn finish(self) -> PyTlsResult {
        let pid = self.child.id();
        let out = self.child.wait_with_output().expect("wait for the python TLS client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "python TLS client failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("client JSON");
        PyTlsResult {
            pid,
            local_port: v["local_port"].as_u64().expect("local_port") as u16,
            codes: v["codes"].as_array().expect("codes").iter().map(|c| c.as_u64().unwrap() as u16).collect(),
            imported_at: std::time::UNIX_EPOCH
                + Duration::from_secs_f64(v["imported_at"].as_f64().expect("imported_at")),
        }
    }
}

/// `tests/c/tls_static_client.c` built with OpenSSL linked statically (from
/// libssl-dev's `libssl.a`/`libcrypto.a`), once per test process, into
/// target/test-bins.
pub fn static_openssl_client() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let out_dir = crate::util::target_dir().join("test-bins");
        std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
        let bin = out_dir.join("tls-static-client");
        let tmp = out_dir.join(format!(".tls-static-client.{}", std::process::id()));
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-O1", "-Wall", "-o"])
            .arg(&tmp)
            .arg(repo_root().join("tests/c/tls_static_client.c"))
            .args(["-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-lpthread", "-ldl"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cc} (install a C compiler): {e}"));
        assert!(
            out.status.success(),
            "building tests/c/tls_static_client.c failed (install the Debian package libssl-dev):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).expect("rename tls-static-client");
        bin
    })
    .clone()
}

/// Runs the static client: after `delay`, GETs `paths` on one connection to
/// 127.0.0.1:`port`. Returns (pid, local port, status codes).
pub fn run_static_client(port: u16, delay: Duration, paths: &[&str]) -> (u32, u16, Vec<u16>) {
    let child = Command::new(static_openssl_client())
        .arg(port.to_string())
        .arg(delay.as_millis().to_string())
        .args(paths)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tls-static-client");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for tls-static-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tls-static-client failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut words = stdout.split_whitespace().map(|w| w.parse::<i64>().expect("a number"));
    let local_port = words.next().expect("local port") as u16;
    (pid, local_port, words.map(|c| c as u16).collect())
}

/// The HTTP checks of one exchange (as `SpanRec::assert_http`, which
/// expects plain HTTP's scheme), plus the HTTPS ones (`assert_https`).
pub fn assert_https_exchange(span: &SpanRec, method: &str, path: &str, status: i64, port: u16, client_port: u16) {
    span.assert_well_formed();
    let d = span.describe();
    // SERVER spans are named by their http.route when one is known.
    let name = match span.str_attr("http.route") {
        Some(route) if span.is_server() => format!("{method} {route}"),
        _ => method.to_string(),
    };
    assert_eq!(span.span.name, name, "{d}");
    assert_eq!(span.str_attr("http.request.method"), Some(method), "{d}");
    assert_eq!(span.url_path(), Some(path), "url.path without the query: {d}");
    assert_eq!(span.http_status(), Some(status), "{d}");
    assert_eq!(span.str_attr("network.protocol.version"), Some("1.1"), "{d}");
    assert_eq!(span.str_attr("server.address"), Some("127.0.0.1"), "{d}");
    assert_eq!(span.server_port(), Some(port), "{d}");
    let error = if span.is_server() { status >= 500 } else { status >= 400 };
    let status_str = status.to_string();
    assert_eq!(span.str_attr("error.type"), error.then_some(status_str.as_str()), "{d}");
    if span.is_server() {
        assert_eq!(span.str_attr("client.address"), Some("127.0.0.1"), "{d}");
        assert_eq!(span.peer_port(), Some(client_port), "network.peer.port is the client's port: {d}");
    } else {
        assert_eq!(span.peer_port(), Some(port), "{d}");
    }
    assert_https(span, port, path);
}
