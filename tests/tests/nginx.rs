//! nginx (epoll, accept4, writev; `return` directives for 200/404/500, and
//! sendfile for static files, whose bodies the probes never see).

use std::time::Duration;

use ebpf_core::protocol::Direction;
use ebpf_probes::abi;
use integration_tests::recording::Recording;
use integration_tests::scenario::{assert_resource, keepalive_sequence, related, three_requests};
use integration_tests::servers::NGINX_BIG_FILE_SIZE;
use integration_tests::{curl, require_root, wait_until, Expect, Receiver, Server, TempDir, WAIT};

#[test]
fn nginx_requests_become_server_and_client_spans() {
    if !require_root() {
        return;
    }
    let server = Server::nginx("127.0.0.1", &[]);
    three_requests(&server, None);
}

#[test]
fn nginx_sendfile_body_is_skipped_and_the_connection_stays_in_sync() {
    if !require_root() {
        return;
    }
    // A 256 KiB file sent with sendfile(2), then more requests on the same
    // connection: each must still get its own span with its own status.
    let server = Server::nginx("127.0.0.1", &[]);
    keepalive_sequence(
        &server,
        &[
            ("/static/big.bin", 200),
            ("/after-sendfile", 200),
            ("/static/missing.bin", 404),
            ("/static/big.bin", 200),
            ("/status/500", 500),
        ],
        None,
    );
}

/// What the kernel sends for a sendfile(2) body: every byte counted, none
/// copied (a file's bytes have no user buffer; on the socket path the
/// tracepoint fires once per chunk the kernel splices).
#[test]
fn nginx_sendfile_bytes_are_counted_not_copied() {
    if !require_root() {
        return;
    }
    let server = Server::nginx("127.0.0.1", &[]);
    let dir = TempDir::new("sendfile");
    let recording = dir.path().join("events.bin");
    let mut rx = Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "record_events": "{}"}}"#,
        recording.display()
    ));
    assert_eq!(curl(&server.url("/static/big.bin")).codes, [200]);
    let port = server.port;
    rx.wait_for(1, WAIT, "the SERVER span", |s| s.is_server() && s.server_port() == Some(port));
    rx.stop();
    let rec = Recording::read(&recording);
    let nginx = server.pid();
    let conns: Vec<u64> =
        rec.opens.iter().filter(|(h, o)| h.tgid == nginx && o.local.1 == port).map(|(h, _)| h.conn_id).collect();
    assert_eq!(conns.len(), 1, "one connection of nginx's: {:?}", rec.opens);
    let out: Vec<_> = rec.data_of(conns[0]).into_iter().filter(|d| d.direction == Direction::Egress).collect();
    let sent: Vec<_> = out.iter().filter(|d| u32::from(d.syscall) == abi::OE_SYS_SENDFILE).collect();
    assert!(!sent.is_empty(), "no sendfile event: {out:?}");
    assert!(sent.iter().all(|d| d.payload.is_empty()), "file bytes copied");
    let counted: usize = sent.iter().map(|d| d.total_len as usize).sum();
    assert_eq!(counted, NGINX_BIG_FILE_SIZE, "every byte of the file counted");
}

#[test]
fn nginx_workers_forked_by_a_master_report_their_own_pid() {
    if !require_root() {
        return;
    }
    // The usual deployment: a master that forks workers (before and after
    // the receiver starts); the workers serve, and each span names the
    // worker that served it.
    let server = Server::nginx_with_workers("127.0.0.1", &[]);
    let mut rx = Receiver::start();
    let workers = wait_until(Duration::from_secs(10), || {
        let w = server.children();
        (w.len() >= 2).then_some(w)
    })
    .expect("nginx forks 2 workers");
    let curls: Vec<_> = ["/w/1", "/w/2", "/status/404"].iter().map(|p| curl(&server.url(p))).collect();
    let port = server.port;
    rx.wait_for(3, WAIT, "SERVER spans of nginx workers", |s| s.is_server() && s.server_port() == Some(port));
    rx.stop();
    let cpids: Vec<u32> = curls.iter().map(|c| c.pid).collect();
    let dump = rx.dump(related(&server, &cpids), 20);
    let srv: Vec<_> = rx.spans_where(|s| s.is_server() && s.server_port() == Some(port));
    assert_eq!(srv.len(), 3, "one SERVER span per request:\n{dump}");
    for s in &srv {
        let pid = s.pid().expect("process.pid");
        assert!(workers.contains(&pid), "served by a worker {workers:?}, not pid {pid}:\n{dump}");
        assert_resource(s, &["nginx".to_string()], pid);
        assert_eq!(
            s.res_int("process.parent_pid"),
            Some(i64::from(server.pid())),
            "parent is the master: {}",
            s.describe()
        );
    }
    for (c, (path, code)) in curls.iter().zip([("/w/1", 200), ("/w/2", 200), ("/status/404", 404)]) {
        let one: Vec<_> = srv.iter().filter(|s| s.url_path() == Some(path)).collect();
        assert_eq!(one.len(), 1, "{path}:\n{dump}");
        one[0].assert_http(&Expect::get(path, code, port).client_port(c.local_ports[0]));
    }
}
