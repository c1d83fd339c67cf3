//! File I/O is not network I/O: writing and reading files (even files that
//! hold HTTP requests) makes no span and no tracked connection, neither in
//! this process nor in a child shell.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use integration_tests::{curl, require_root, unique_token, Receiver, Server, TempDir, WAIT};

#[test]
fn file_reads_and_writes_make_no_spans() {
    if !require_root() {
        return;
    }
    let mut rx = Receiver::start();
    let token = unique_token("fileio");
    let dir = TempDir::new("fileio");
    let path = dir.path().join(format!("{token}.http"));
    // What a file holds must not matter: make it look like HTTP.
    let request = format!("GET /{token} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    // This process: create, write, read, rewrite, many times.
    for _ in 0..300 {
        std::fs::write(&path, &request).expect("write");
        let back = std::fs::read_to_string(&path).expect("read");
        assert_eq!(back, request);
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open");
        f.write_all(response.as_bytes()).expect("write");
        f.seek(SeekFrom::Start(0)).expect("seek");
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).expect("read");
    }

    // A child process doing the same through the shell (and a pipe).
    let script = r#"i=0; while [ $i -lt 100 ]; do printf "$2" > "$1"; cat "$1" | cat > /dev/null; i=$((i+1)); done"#;
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&path)
        .arg(request.replace('\r', "\\r").replace('\n', "\\n"))
        .output()
        .expect("run sh");
    assert!(out.status.success(), "shell loop failed: {}", String::from_utf8_lossy(&out.stderr));

    // A control request proves the receiver is live and exporting.
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let c = curl(&server.url("/control"));
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "the control SERVER span", |s| s.is_server() && s.pid() == Some(spid));
    rx.stop();

    let me = std::process::id();
    let mine = rx.spans_where(|s| s.pid() == Some(me));
    assert!(mine.is_empty(), "spans from the test process itself ({me}):\n{}", rx.dump(|s| s.pid() == Some(me), 10));
    assert!(
        !rx.raw_contains(token.as_bytes()),
        "the file's name or contents ({token}) appear in exported spans:\n{}",
        rx.dump(|s| s.describe().contains(&token), 10)
    );
    let paths = rx.spans_where(|s| s.url_path().is_some_and(|p| p.contains(&token)));
    assert!(paths.is_empty(), "a span for a file's content");
}

/// `tests/c/fd_reused_by_file.c`, linked statically, in target/test-bins.
fn fd_reused_by_file_bin() -> PathBuf {
    let out_dir = integration_tests::util::target_dir().join("test-bins");
    std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
    let bin = out_dir.join("fd-reused-by-file");
    let tmp = out_dir.join(format!(".fd-reused-by-file.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let src = integration_tests::util::repo_root().join("tests/c/fd_reused_by_file.c");
    let out = Command::new(&cc)
        .args(["-O1", "-Wall", "-static", "-o"])
        .arg(&tmp)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc} (install a C compiler): {e}"));
    assert!(out.status.success(), "building fd_reused_by_file.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &bin).expect("rename fd-reused-by-file");
    bin
}

/// A traced connection's fd number becomes a file's without a close() call
/// (`how`: "exec", "dup2" or "close_range"); the program then writes a request into the
/// file and reads a response back, on that number. None of it is the old
/// connection's: no span, and nothing of the file in any export.
fn file_on_a_connection_s_fd_number(how: &str) {
    let helper = fd_reused_by_file_bin();
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let token = unique_token("reused");
    let dir = TempDir::new("reused");
    let path = dir.path().join("reused.http");
    let request = format!("GET /{token} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The request is written over the placeholder, the response read after it.
    let response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    std::fs::write(&path, format!("{}{response}", "-".repeat(request.len()))).expect("write the file");
    let out = Command::new(&helper)
        .arg(server.port.to_string())
        .arg(&path)
        .arg(&request)
        .arg(how)
        .output()
        .expect("run fd-reused-by-file");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "fd-reused-by-file {how} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let fds: Vec<&str> = text.split_whitespace().skip(1).collect();
    assert!(fds.len() == 2 && fds[0] == fds[1], "the file did not get the socket's fd number: {text}");
    assert_eq!(std::fs::read_to_string(&path).expect("read back"), format!("{request}{response}"));

    let spid = server.pid();
    rx.wait_for(1, WAIT, "the SERVER span of /before-reuse", |s| s.is_server() && s.pid() == Some(spid));
    std::thread::sleep(Duration::from_millis(500));
    rx.stop();
    let paths = rx.spans_where(|s| s.url_path().is_some_and(|p| p.contains(&token)));
    assert!(paths.is_empty(), "{how}: spans for a file's content:\n{}", rx.dump(|s| s.describe().contains(&token), 10));
    assert!(
        !rx.raw_contains(token.as_bytes()),
        "{how}: the file's contents ({token}) appear in exported telemetry:\n{}",
        rx.dump(|s| s.describe().contains(&token), 10)
    );
}

/// exec() closes close-on-exec sockets with no close() call; the new image
/// runs before the receiver has seen the exec (the helper is static, so its
/// file I/O is the new image's first syscalls).
#[test]
fn file_io_on_the_fd_number_of_a_socket_closed_by_exec_makes_no_spans() {
    if require_root() {
        file_on_a_connection_s_fd_number("exec");
    }
}

/// dup2() closes the socket its target fd was, with no close() call.
#[test]
fn file_io_on_the_fd_number_of_a_socket_replaced_by_dup2_makes_no_spans() {
    if require_root() {
        file_on_a_connection_s_fd_number("dup2");
    }
}

/// close_range() closes the socket with no close() call.
#[test]
fn file_io_on_the_fd_number_of_a_socket_closed_by_close_range_makes_no_spans() {
    if require_root() {
        file_on_a_connection_s_fd_number("close_range");
    }
}
