//! Socket I/O through io_uring: the kernel makes the calls from io_uring's
//! own context (a worker thread, io_uring_enter, or task work on the way out
//! of another syscall), where no saved register holds the user's buffer.
//! The socket path counts each such call (`io_uring_uncaptured`,
//! `ebpf_receiver.io_uring.uncaptured`) and captures nothing of it; it never
//! mistakes another syscall's buffer for it. The server's plain syscalls are
//! traced as ever. (The syscall path does not see io_uring at all.)

use std::process::Command;
use std::time::Duration;

use integration_tests::bpf_links::kernel_has_socket_layer_tracepoints;
use integration_tests::receiver::test_data_path;
use integration_tests::util::c_program;
use integration_tests::{require_root, unique_token, Receiver, Server, WAIT};

#[test]
fn io_uring_socket_calls_are_counted_not_captured() {
    if !require_root() {
        return;
    }
    let client = c_program("io_uring_client", &[]);
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let before = rx.counter("io_uring_uncaptured");
    let prefix = format!("/{}", unique_token("uring"));
    const N: usize = 5;
    let out = Command::new(&client)
        .args([&server.port.to_string(), &prefix, &N.to_string()])
        .output()
        .expect("run io_uring_client");
    assert!(out.status.success(), "io_uring_client: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {N}"));

    let spid = server.pid();
    let on_prefix = |s: &integration_tests::SpanRec| s.url_path().is_some_and(|p| p.starts_with(&prefix));
    rx.wait_for(N, WAIT, "the server's spans", |s| s.is_server() && s.pid() == Some(spid) && on_prefix(s));
    // Counters are read every 100 ms.
    std::thread::sleep(Duration::from_millis(300));
    let counted = rx.counter("io_uring_uncaptured") - before;
    rx.stop();
    let client_spans = rx.spans_where(|s| !s.is_server() && on_prefix(s));
    assert!(client_spans.is_empty(), "a client span from io_uring I/O: {client_spans:?}");
    assert_eq!(rx.spans_where(|s| s.is_server() && on_prefix(s)).len(), N, "one server span per request");
    if test_data_path().as_deref() == Some("syscall") || !kernel_has_socket_layer_tracepoints() {
        assert_eq!(counted, 0, "the syscall path cannot see io_uring");
    } else {
        // A send and at least one recv per request.
        assert!(counted >= 2 * N as u64, "io_uring calls counted: {counted}");
    }
}
