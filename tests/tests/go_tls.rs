//! Go `crypto/tls`: plaintext captured at `(*Conn).Read`/`.Write` of Go
//! executables (uprobes at their entries and on every RET) gives the same
//! HTTPS spans as OpenSSL's. Server: Go net/http (tests/go/tls-server);
//! clients: a Go net/http client on one keep-alive connection
//! (tests/go/tls-client) and curl (OpenSSL). Go binaries are found by the
//! start-up scan or the rescan after their exec; connections older than the
//! probes are joined without mis-paired exchanges; the Go server's
//! ciphertext is never parsed.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use integration_tests::clients::curl_with;
use integration_tests::scenario::sorted_by_start;
use integration_tests::servers::is_listening;
use integration_tests::span::SpanRec;
use integration_tests::tls::{assert_https_exchange, Cert};
use integration_tests::util::{free_port, go_program, wait_until, which, TempDir};
use integration_tests::{require_root, unique_token, CurlResult, Receiver, WAIT};

/// The offsets `ebpf-probes/bpf/gotls.bpf.c` walks from a `*tls.Conn` to its
/// fd (and reads the goroutine's stack bounds at), as `<struct>.<field>`.
const PROBE_OFFSETS: [(&str, i64); 9] = [
    ("crypto/tls.Conn.conn", 0),
    ("runtime.iface.data", 8),
    ("net.TCPConn.conn", 0),
    ("net.conn.fd", 0),
    ("net.netFD.pfd", 0),
    ("internal/poll.FD.Sysfd", 16),
    ("runtime.g.stack", 0),
    ("runtime.stack.lo", 0),
    ("runtime.stack.hi", 8),
];

/// tests/go/tls-server on 127.0.0.1; killed and reaped on drop.
struct GoTlsServer {
    port: u16,
    child: Child,
    dir: TempDir,
}

impl GoTlsServer {
    fn start(cert: &Cert) -> Self {
        Self::start_on(cert, free_port())
    }

    fn start_on(cert: &Cert, port: u16) -> Self {
        let dir = TempDir::new("gotls");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create server log");
        let child = Command::new(go_program("tls-server"))
            .arg("-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert.cert())
            .arg("-key")
            .arg(cert.key())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .env_remove("OTEL_SERVICE_NAME")
            .spawn()
            .expect("spawn go-tls-server");
        let mut server = Self { port, child, dir };
        let listening = wait_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("go-tls-server exited with {status} before listening:\n{}", server.log());
            }
            is_listening(port).then_some(())
        });
        assert!(listening.is_some(), "go-tls-server did not listen on {port}:\n{}", server.log());
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, target: &str) -> String {
        format!("https://127.0.0.1:{}{target}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for GoTlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/go/tls-client: one keep-alive connection, a request per call.
struct GoTlsClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    dir: TempDir,
}

/// What one request of the Go client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GoReply {
    code: u16,
    local_port: u16,
    reused: bool,
}

impl GoTlsClient {
    fn spawn(port: u16) -> Self {
        let dir = TempDir::new("gotlscli");
        let log = std::fs::File::create(dir.path().join("client.log")).expect("create client log");
        let mut child = Command::new(go_program("tls-client"))
            .arg("-addr")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .env_remove("OTEL_SERVICE_NAME")
            .spawn()
            .expect("spawn go-tls-client");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("client stdout"));
        Self { child, stdin, stdout, dir }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `STACKS n` (see tests/go/tls-client): n requests on a connection of
    /// its own, each written from a fresh goroutine at a growing stack depth.
    /// The reply's `code` is how many were answered 200.
    fn stacks(&mut self, n: usize) -> GoReply {
        self.request("STACKS", &n.to_string())
    }

    fn request(&mut self, method: &str, path: &str) -> GoReply {
        let stdin = self.stdin.as_mut().expect("client stdin");
        writeln!(stdin, "{method} {path}").and_then(|()| stdin.flush()).expect("write to the Go client");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the Go client's reply");
        let log = || std::fs::read_to_string(self.dir.path().join("client.log")).unwrap_or_default();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{method} {path}: unexpected reply {line:?}; client log:\n{}", log());
        GoReply {
            code: f[0].parse().expect("status"),
            local_port: f[1].parse().expect("local port"),
            reused: f[2] == "true",
        }
    }
}

impl Drop for GoTlsClient {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: it exits
        if wait_until(Duration::from_secs(3), || self.child.try_wait().ok().flatten()).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the Go server's probes are in. They load when the receiver
/// first finds a Go binary, which on a busy machine can end after a test's
/// first requests. curl's requests, on connections of their own, show when
/// they are in (the start-up scan finds every Go binary running at once).
/// Their spans have the path `/warmup`.
fn wait_for_go_probes(server: &GoTlsServer, rx: &Receiver) {
    let spid = server.pid();
    let ready = (0..40).any(|_| {
        curl_with(&[server.url("/warmup")], &["-k"]);
        std::thread::sleep(Duration::from_millis(250));
        !rx.spans_where(|s| s.pid() == Some(spid) && s.url_path() == Some("/warmup")).is_empty()
    });
    assert!(ready, "no span of the Go server for curl's /warmup: its probes never attached");
}

/// A receiver tracing only connections to `port`: the parse-error count is
/// then about this test's connections alone.
fn receiver_for_port(port: u16) -> Receiver {
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "selection": {{"include": {{"ports": [{port}]}}}}}}"#
    ))
}

fn dump(spans: &[SpanRec]) -> String {
    spans.iter().map(|s| format!("  {}\n", s.describe())).collect()
}

#[test]
fn go_struct_offsets_are_those_the_probes_assume() {
    let bin = go_program("tls-server");
    let out = Command::new(&bin).arg("-offsets").output().expect("run go-tls-server -offsets");
    assert!(out.status.success(), "go-tls-server -offsets: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("offsets JSON");
    let version = Command::new(which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go")))
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    eprintln!("{version}: {got}");
    for (field, offset) in PROBE_OFFSETS {
        assert_eq!(
            got[field].as_i64(),
            Some(offset),
            "{field} moved in {version}: update ebpf-probes/bpf/gotls.bpf.c (DWARF says {got})"
        );
    }
}

#[test]
fn go_https_server_and_clients_give_https_spans() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    // Running before the receiver: found by the start-up scan.
    let server = GoTlsServer::start(&cert);
    go_program("tls-client"); // built before the receiver starts
    let mut rx = receiver_for_port(server.port);
    let spid = server.pid();
    wait_for_go_probes(&server, &rx);

    // curl (OpenSSL, traced already) against the Go server.
    let token = unique_token("go-tls-s3cr3t");
    let curl_cases: [(&str, &str, String, i64); 3] = [
        ("GET", "/curl/hello", format!("/curl/hello?secret={token}"), 200),
        ("GET", "/status/404", "/status/404".to_string(), 404),
        ("POST", "/curl/post", "/curl/post".to_string(), 200),
    ];
    let curls: Vec<CurlResult> = curl_cases
        .iter()
        .map(|(method, _, target, code)| {
            let extra: &[&str] = if *method == "POST" { &["-k", "--data", "curl-body"] } else { &["-k"] };
            let c = curl_with(&[server.url(target)], extra);
            assert_eq!(c.codes, [*code as u16], "{method} {target}\n{}", server.log());
            c
        })
        .collect();

    // The Go client, exec'd now: found by the rescan 0.1 s after its exec,
    // instrumented once its binary is read (seconds on a loaded machine).
    let instrumented = rx.stats_all().tls_libraries;
    let mut client = GoTlsClient::spawn(server.port);
    let attached = wait_until(Duration::from_secs(30), || (rx.stats_all().tls_libraries > instrumented).then_some(()));
    assert!(attached.is_some(), "the Go client's probes never attached");
    let go_cases: [(&str, &str, i64); 4] =
        [("GET", "/go/1", 200), ("POST", "/go/2", 200), ("GET", "/status/404", 404), ("POST", "/status/500", 500)];
    let replies: Vec<GoReply> = go_cases.iter().map(|(m, p, _)| client.request(m, p)).collect();
    let go_port = replies[0].local_port;
    for (reply, (m, p, code)) in replies.iter().zip(&go_cases) {
        assert_eq!(reply.code, *code as u16, "{m} {p}\n{}", server.log());
        assert_eq!(reply.local_port, go_port, "one keep-alive connection: {replies:?}");
    }
    assert!(replies[1..].iter().all(|r| r.reused), "the connection is reused: {replies:?}");
    let cpid = client.pid();
    drop(client);

    let n = curl_cases.len() + go_cases.len();
    rx.wait_for(n, WAIT, "SERVER spans of the Go server", |s| {
        s.is_server() && s.pid() == Some(spid) && s.url_path() != Some("/warmup")
    });
    rx.wait_for(go_cases.len(), WAIT, "CLIENT spans of the Go client", |s| s.is_client() && s.pid() == Some(cpid));
    for c in &curls {
        rx.wait_for(1, WAIT, "the CLIENT span of a curl", |s| s.is_client() && s.pid() == Some(c.pid));
    }
    rx.stop();

    let mut pids: Vec<u32> = curls.iter().map(|c| c.pid).collect();
    pids.extend([spid, cpid]);
    let port = server.port;
    let rel = rx.spans_where(|s| {
        (s.pid().is_some_and(|p| pids.contains(&p)) || s.server_port() == Some(port) || s.peer_port() == Some(port))
            && s.url_path() != Some("/warmup")
    });
    let d = dump(&rel);
    eprintln!("spans involving the Go TLS server on port {port}:\n{d}");
    assert_eq!(rel.len(), 2 * n, "one SERVER and one CLIENT span per request, none from ciphertext:\n{d}");

    for ((method, path, _, code), c) in curl_cases.iter().zip(&curls) {
        let cport = c.local_ports[0];
        let srv: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(spid) && s.peer_port() == Some(cport)).collect();
        assert_eq!(srv.len(), 1, "one SERVER span for curl's {method} {path}:\n{d}");
        assert!(srv[0].is_server(), "{d}");
        assert_https_exchange(srv[0], method, path, *code, port, cport);
        let cli: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(c.pid)).collect();
        assert_eq!(cli.len(), 1, "one CLIENT span from the curl of {path}:\n{d}");
        assert_https_exchange(cli[0], method, path, *code, port, cport);
    }

    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid) && s.peer_port() == Some(go_port)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(cpid)));
    let d = dump(&[srv.clone(), cli.clone()].concat());
    assert_eq!((srv.len(), cli.len()), (go_cases.len(), go_cases.len()), "one span per request per side:\n{d}");
    for (i, (method, path, code)) in go_cases.iter().enumerate() {
        assert!(srv[i].is_server() && cli[i].is_client(), "{d}");
        assert_https_exchange(&srv[i], method, path, *code, port, go_port);
        assert_https_exchange(&cli[i], method, path, *code, port, go_port);
        assert_eq!(cli[i].service_name(), Some("go-tls-client"), "{d}");
    }
    assert!(!rx.raw_contains(token.as_bytes()), "the query string leaked into the exported bytes");
    // Ciphertext never reached the HTTP parser: it would have failed on it.
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}

#[test]
fn a_go_tls_connection_opened_before_the_receiver_is_joined_cleanly() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    let server = GoTlsServer::start(&cert);
    // Connected, handshake done and a request served before the receiver
    // exists: both sides then wait in a Read the probes never saw start.
    let mut client = GoTlsClient::spawn(server.port);
    let first = client.request("GET", "/before");
    assert_eq!(first.code, 200);
    let mut rx = receiver_for_port(server.port);
    let (spid, cpid, port) = (server.pid(), client.pid(), server.port);
    wait_for_go_probes(&server, &rx);

    // The first exchange after the start may be lost (its bytes went through
    // the Reads already waiting), never mis-paired; the later ones are traced.
    let cases: [(&str, &str, u16); 4] =
        [("GET", "/after/1", 200), ("GET", "/after/2", 200), ("POST", "/status/404", 404), ("GET", "/after/4", 200)];
    for (m, p, code) in cases {
        let r = client.request(m, p);
        assert_eq!((r.code, r.local_port, r.reused), (code, first.local_port, true), "{m} {p}: the same connection");
        std::thread::sleep(Duration::from_millis(200));
    }
    let traced = &cases[1..];
    let is_traced_path = |s: &SpanRec| traced.iter().any(|(_, p, _)| s.url_path() == Some(p));
    rx.wait_for(traced.len(), WAIT, "SERVER spans after the start", |s| s.pid() == Some(spid) && is_traced_path(s));
    rx.wait_for(traced.len(), WAIT, "CLIENT spans after the start", |s| s.pid() == Some(cpid) && is_traced_path(s));
    drop(client);
    rx.stop();

    for (pid, side) in [(spid, "server"), (cpid, "client")] {
        // curl's warm-up requests aside.
        let spans = sorted_by_start(rx.spans_where(|s| s.pid() == Some(pid) && s.url_path() != Some("/warmup")));
        let d = dump(&spans);
        eprintln!("{side} spans:\n{d}");
        // Drop the first exchange after the start, if it was traced at all.
        let rest: Vec<&SpanRec> = spans.iter().filter(|s| s.url_path() != Some("/after/1")).collect();
        assert!(spans.len() - rest.len() <= 1, "/after/1 once at most ({side}):\n{d}");
        if let Some(s) = spans.iter().find(|s| s.url_path() == Some("/after/1")) {
            assert_https_exchange(s, "GET", "/after/1", 200, port, first.local_port);
        }
        assert_eq!(rest.len(), traced.len(), "one {side} span per request after the first, none before:\n{d}");
        for (s, (m, p, code)) in rest.iter().zip(traced) {
            assert_https_exchange(s, m, p, i64::from(*code), port, first.local_port);
        }
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: the connection was joined mid-message?");
}

/// A Go function whose stack check fails calls `runtime.morestack` and runs
/// again from its first instruction: a probe there fired twice for one
/// Write, and each such request was reported twice (mis-pairing every later
/// exchange of the connection). Written from fresh goroutines at every depth
/// of a range, some of these Writes are the ones that grow the stack.
#[test]
fn go_tls_writes_that_grow_their_goroutine_stack_are_reported_once() {
    if !require_root() {
        return;
    }
    const N: usize = 300;
    let cert = Cert::generate();
    let server = GoTlsServer::start(&cert);
    let mut client = GoTlsClient::spawn(server.port);
    let mut rx = receiver_for_port(server.port);
    let (spid, cpid, port) = (server.pid(), client.pid(), server.port);
    wait_for_go_probes(&server, &rx);

    let reply = client.stacks(N);
    assert_eq!(reply.code as usize, N, "every request answered 200\n{}", server.log());
    let on_conn = |s: &SpanRec| s.url_path().is_some_and(|p| p.starts_with("/stacks/"));
    rx.wait_for(N, WAIT, "CLIENT spans of /stacks/*", |s| s.pid() == Some(cpid) && on_conn(s));
    rx.wait_for(N, WAIT, "SERVER spans of /stacks/*", |s| s.pid() == Some(spid) && on_conn(s));
    // Late duplicates would arrive with the rest: give them a batch timeout.
    std::thread::sleep(Duration::from_millis(500));
    drop(client);
    rx.stop();

    for (pid, side) in [(cpid, "client"), (spid, "server")] {
        let spans = sorted_by_start(rx.spans_where(|s| s.pid() == Some(pid) && on_conn(s)));
        let paths: Vec<&str> = spans.iter().filter_map(|s| s.url_path()).collect();
        let want: Vec<String> = (0..N).map(|i| format!("/stacks/{i}")).collect();
        let first_wrong = paths.iter().zip(&want).position(|(p, w)| p != w);
        assert!(
            paths.len() == N && first_wrong.is_none(),
            "each request once, in order ({side} side): {} spans; first out of place at {first_wrong:?}: {:?}",
            paths.len(),
            first_wrong.map(|i| &paths[i..(i + 4).min(paths.len())]),
        );
        for (s, path) in spans.iter().zip(&want) {
            assert_https_exchange(s, "GET", path, 200, port, reply.local_port);
        }
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors on the /stacks connection");
}

#[test]
fn a_go_server_started_after_the_receiver_is_found_at_its_exec() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    // Built before the receiver starts, started after it, when no Go program
    // using crypto/tls ran: its discovery after exec also loads the Go
    // programs, in the worker.
    go_program("tls-server");
    let port = free_port();
    let mut rx = receiver_for_port(port);
    let server = GoTlsServer::start_on(&cert, port);
    let spid = server.pid();

    // Requests made before the rescan after exec are not traced.
    let deadline = std::time::Instant::now() + WAIT;
    let mut warmups = 0;
    loop {
        warmups += 1;
        let c = curl_with(&[server.url(&format!("/warmup/{warmups}"))], &["-k"]);
        assert_eq!(c.codes, [200], "{}", server.log());
        let seen = wait_until(Duration::from_millis(700), || {
            rx.spans_where(|s| s.is_server() && s.pid() == Some(spid)).first().cloned()
        });
        if seen.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no span from the Go server after {warmups} requests");
    }

    let cases: [(&str, &str, i64); 2] = [("POST", "/late/1", 200), ("GET", "/status/500", 500)];
    let curls: Vec<CurlResult> = cases
        .iter()
        .map(|(method, path, _)| {
            let extra: &[&str] = if *method == "POST" { &["-k", "--data", "late-body"] } else { &["-k"] };
            curl_with(&[server.url(path)], extra)
        })
        .collect();
    for c in &curls {
        rx.wait_for(1, WAIT, "the SERVER span of a request", |s| {
            s.pid() == Some(spid) && s.peer_port() == Some(c.local_ports[0])
        });
    }
    rx.stop();
    let spans = rx.spans_where(|s| s.pid() == Some(spid));
    let d = dump(&spans);
    eprintln!("found after {warmups} warm-up request(s); spans of the Go server:\n{d}");
    for ((method, path, code), c) in cases.iter().zip(&curls) {
        let cport = c.local_ports[0];
        let srv: Vec<&SpanRec> = spans.iter().filter(|s| s.peer_port() == Some(cport)).collect();
        assert_eq!(srv.len(), 1, "one SERVER span for {method} {path}:\n{d}");
        assert_https_exchange(srv[0], method, path, *code, port, cport);
    }
    assert!(
        spans.iter().all(|s| s.url_path().is_some_and(|p| p.starts_with("/warmup/"))
            || cases.iter().any(|(_, p, _)| s.url_path() == Some(p))),
        "no other span:\n{d}"
    );
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}
