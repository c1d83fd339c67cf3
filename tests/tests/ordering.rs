//! A connection's sends and receives in the order they happened, when a
//! client's send is still in the kernel while another of its threads reads
//! the answer (a server that answers before reading an upload's body: 413,
//! 401, an early 200).
//!
//! A data event is stamped when its call completes, so the early answer's
//! event comes before the request's: the socket path marks the receive
//! that found the socket's `write_seq` moved and the send it overtook, and
//! conntrack puts the send first (`conntrack/overlap.rs`).

use std::time::Duration;

use integration_tests::kv::python_client;
use integration_tests::{require_root, Receiver, SpanRec};

/// Three connections, one each: the client sends a 16 MiB POST in one
/// `sendall` (it blocks: the server reads the body only 0.3 s after it
/// answered) while a reader thread takes the answer.
const EARLY_ANSWER: &str = r#"
import socket, threading, time
BODY = 16 << 20
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
port = ls.getsockname()[1]
def serve():
    for _ in range(3):
        s, _ = ls.accept()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.3)
        got = len(buf.split(b"\r\n\r\n", 1)[1])
        while got < BODY:
            got += len(s.recv(1 << 20))
        s.close()
threading.Thread(target=serve, daemon=True).start()
for i in range(3):
    c = socket.create_connection(("127.0.0.1", port))
    answer = []
    reader = threading.Thread(target=lambda: answer.append(c.recv(4096)))
    reader.start()
    c.sendall(b"POST /upload/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, BODY) + b"x" * BODY)
    reader.join()
    assert answer[0].startswith(b"HTTP/1.1 200"), answer
    c.close()
"#;

#[test]
fn an_answer_read_during_a_blocked_send_pairs_with_its_request() {
    if !require_root() {
        return;
    }
    let rx = Receiver::start();
    // Fails the test when the script does (its assertion on the answer).
    let pid = python_client(EARLY_ANSWER, &[]).pid;

    let ours = |client: bool| {
        move |s: &SpanRec| {
            s.pid() == Some(pid) && s.is_client() == client && s.url_path().is_some_and(|p| p.starts_with("/upload/"))
        }
    };
    let servers = rx.wait_for(3, Duration::from_secs(10), "3 server spans", ours(false));
    let clients = rx.wait_for(3, Duration::from_secs(10), "3 client spans", ours(true));
    for span in servers.iter().chain(&clients) {
        assert_eq!(span.http_status(), Some(200), "{}", span.describe());
        assert_eq!(span.str_attr("error.type"), None, "{}", span.describe());
    }
    let mut paths: Vec<_> = clients.iter().filter_map(|s| s.url_path()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/upload/0", "/upload/1", "/upload/2"]);
    // Each upload's send was put back before its answer (other processes
    // on the host may add theirs).
    let reordered = rx.counter("sends_reordered");
    assert!(reordered >= 3, "ebpf_receiver.sends.reordered is {reordered}");
    // The send's start is not known: the client span starts just before
    // its answer, never after its end.
    for span in &clients {
        assert!(span.end() >= span.start(), "{}", span.describe());
    }
}
