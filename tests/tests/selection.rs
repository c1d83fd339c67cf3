//! The `selection` config: which processes and connections are traced.
//! Excluded processes make no spans while their peers are still traced;
//! include rules trace only what they name.

use std::time::Duration;

use integration_tests::scenario::related;
use integration_tests::{curl, require_root, Expect, Receiver, Server, WAIT};

fn config(selection: &str) -> String {
    format!(r#"{{"batch": {{"timeout_ms": 200}}, "selection": {selection}}}"#)
}

#[test]
fn excluded_pid_makes_no_spans_but_its_client_does() {
    if !require_root() {
        return;
    }
    let excluded = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let traced = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start_with(&config(&format!(r#"{{"exclude": {{"pids": [{}]}}}}"#, excluded.pid())));

    let c1 = curl(&excluded.url("/excluded"));
    let c2 = curl(&traced.url("/traced"));
    assert_eq!((c1.codes[0], c2.codes[0]), (200, 200));
    let tpid = traced.pid();
    // Once the later request's spans are in, the earlier one's would be too.
    rx.wait_for(1, WAIT, "SERVER span of the traced server", |s| s.pid() == Some(tpid));
    rx.wait_for(1, WAIT, "CLIENT span of the curl to the excluded server", |s| s.pid() == Some(c1.pid));
    rx.stop();

    let xpid = excluded.pid();
    let from_excluded = rx.spans_where(|s| s.pid() == Some(xpid));
    assert!(
        from_excluded.is_empty(),
        "spans from the excluded pid {xpid}:\n{}",
        rx.dump(|s| s.pid() == Some(xpid), 10)
    );
    let client = rx.spans_where(|s| s.pid() == Some(c1.pid));
    assert_eq!(client.len(), 1, "{}", rx.dump(|s| s.pid() == Some(c1.pid), 10));
    client[0].assert_http(&Expect::get("/excluded", 200, excluded.port));
}

#[test]
fn included_exe_path_traces_only_that_executable() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start_with(&config(r#"{"include": {"exe_paths": ["*/demo-server"]}}"#));
    let c = curl(&server.url("/only-server"));
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "SERVER span of the included executable", |s| s.pid() == Some(spid));
    rx.stop();
    let rel = rx.spans_where(related(&server, &[c.pid]));
    let dump = rx.dump(related(&server, &[c.pid]), 10);
    assert_eq!(rel.len(), 1, "only the server's span; curl is not included:\n{dump}");
    rel[0].assert_http(&Expect::get("/only-server", 200, server.port).client_port(c.local_ports[0]));
    let others = rx.spans_where(|s| s.res_str("process.executable.name") != Some("demo-server"));
    assert!(
        others.is_empty(),
        "spans of other executables:\n{}",
        rx.dump(|s| s.service_name() != Some("demo-server"), 10)
    );
}

#[test]
fn included_port_traces_only_connections_to_that_port() {
    if !require_root() {
        return;
    }
    let wanted = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let other = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start_with(&config(&format!(r#"{{"include": {{"ports": [{}]}}}}"#, wanted.port)));
    let c_other = curl(&other.url("/other"));
    let c_wanted = curl(&wanted.url("/wanted"));
    assert_eq!((c_other.codes[0], c_wanted.codes[0]), (200, 200));
    let wpid = wanted.pid();
    rx.wait_for(1, WAIT, "SERVER span on the included port", |s| s.pid() == Some(wpid));
    rx.wait_for(1, WAIT, "CLIENT span to the included port", |s| s.pid() == Some(c_wanted.pid));
    rx.stop();
    let on_other = rx.spans_where(related(&other, &[c_other.pid]));
    assert!(on_other.is_empty(), "spans for a port not included:\n{}", rx.dump(related(&other, &[c_other.pid]), 10));
    let on_wanted = rx.spans_where(related(&wanted, &[c_wanted.pid]));
    assert_eq!(on_wanted.len(), 2, "{}", rx.dump(related(&wanted, &[c_wanted.pid]), 10));
    for s in &on_wanted {
        s.assert_http(&Expect::get("/wanted", 200, wanted.port));
    }
    let elsewhere = rx.spans_where(|s| s.server_port() != Some(wanted.port));
    assert!(elsewhere.is_empty(), "spans on other ports:\n{}", rx.dump(|s| s.server_port() != Some(wanted.port), 10));
}

/// A Python process that, once told to, forks a child (no exec) which
/// answers one HTTP request on the socket the parent bound.
struct ForkingServer {
    parent: std::process::Child,
    port: u16,
}

const FORKING_SERVER: &str = r#"
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"from the child\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
sys.stdin.readline()
child = os.fork()
if child == 0:
    print(os.getpid(), flush=True)
    srv.handle_request()
    os._exit(0)
os.waitpid(child, 0)
"#;

impl ForkingServer {
    fn start() -> Self {
        use std::io::BufRead;
        let mut parent = std::process::Command::new(integration_tests::servers::python())
            .args(["-c", FORKING_SERVER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(parent.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        Self { port: line.trim().parse().expect("the port"), parent }
    }

    /// Forks the child; its pid.
    fn fork(&mut self) -> u32 {
        use std::io::{BufRead, Write};
        self.parent.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(self.parent.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        line.trim().parse().expect("the child's pid")
    }
}

impl Drop for ForkingServer {
    fn drop(&mut self) {
        let _ = self.parent.kill();
        let _ = self.parent.wait();
    }
}

/// A receiver whose `side` ("include" or "exclude") names the forking
/// server's parent pid, then a curl to the child it forks after the start:
/// the receiver, the child's pid, the curl.
fn curl_a_forked_child(side: &str, server: &mut ForkingServer) -> (Receiver, u32, integration_tests::CurlResult) {
    let ppid = server.parent.id();
    let rx = Receiver::start_with(&config(&format!(r#"{{"{side}": {{"pids": [{ppid}]}}}}"#)));
    let child = server.fork();
    let c = curl(&format!("http://127.0.0.1:{}/forked", server.port));
    assert_eq!(c.codes, [200]);
    (rx, child, c)
}

/// Forked children inherit their parent's decision in the kernel (the fork
/// program copies the parent's bit): an included pid's child is traced.
#[test]
fn a_child_forked_by_an_included_process_is_traced() {
    if !require_root() {
        return;
    }
    let mut server = ForkingServer::start();
    let (mut rx, child, c) = curl_a_forked_child("include", &mut server);
    rx.wait_for(1, WAIT, "SERVER span of the included process's child", |s| s.pid() == Some(child));
    rx.stop();
    let spans = rx.spans_where(|s| s.pid() == Some(child) || s.pid() == Some(c.pid));
    let dump = rx.dump(|s| s.pid() == Some(child) || s.pid() == Some(c.pid), 10);
    assert_eq!(spans.len(), 1, "the child's SERVER span only (curl is not included):\n{dump}");
    spans[0].assert_http(&Expect::get("/forked", 200, server.port).client_port(c.local_ports[0]));
}

/// The other way round: an excluded pid's child stays excluded, while the
/// curl talking to it is traced.
#[test]
fn a_child_forked_by_an_excluded_process_is_not_traced() {
    if !require_root() {
        return;
    }
    let mut server = ForkingServer::start();
    let (mut rx, child, c) = curl_a_forked_child("exclude", &mut server);
    rx.wait_for(1, WAIT, "CLIENT span of the curl to the excluded child", |s| s.pid() == Some(c.pid));
    rx.stop();
    let from_child = rx.spans_where(|s| s.pid() == Some(child));
    assert!(from_child.is_empty(), "spans from the excluded child:\n{}", rx.dump(|s| s.pid() == Some(child), 10));
}
