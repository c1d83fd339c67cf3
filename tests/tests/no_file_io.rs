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

/// `tests/c/exec_then_file_io.c`, linked statically, in target/test-bins.
fn exec_then_file_io() -> PathBuf {
    let out_dir = integration_tests::util::target_dir().join("test-bins");
    std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
    let bin = out_dir.join("exec-then-file-io");
    let tmp = out_dir.join(format!(".exec-then-file-io.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let src = integration_tests::util::repo_root().join("tests/c/exec_then_file_io.c");
    let out = Command::new(&cc)
        .args(["-O1", "-Wall", "-static", "-o"])
        .arg(&tmp)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc} (install a C compiler): {e}"));
    assert!(out.status.success(), "building exec_then_file_io.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &bin).expect("rename exec-then-file-io");
    bin
}

/// exec() closes close-on-exec sockets without a close() call, so a file the
/// new image opens gets the socket's fd number. What it writes and reads
/// there (a request, then a response) is a file's, not the old connection's,
/// even before the receiver has seen the exec: the helper is static, so that
/// file I/O is the new image's first.
#[test]
fn file_io_on_the_fd_number_of_a_socket_closed_by_exec_makes_no_spans() {
    if !require_root() {
        return;
    }
    let helper = exec_then_file_io();
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let token = unique_token("execfile");
    let dir = TempDir::new("execfile");
    let path = dir.path().join("after-exec.http");
    let request = format!("GET /{token} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The request is written over the placeholder, the response read after it.
    let response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    std::fs::write(&path, format!("{}{response}", "-".repeat(request.len()))).expect("write the file");
    let out = Command::new(&helper)
        .arg(server.port.to_string())
        .arg(&path)
        .arg(&request)
        .output()
        .expect("run exec-then-file-io");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "exec-then-file-io failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let fds: Vec<&str> = text.split_whitespace().skip(1).collect();
    assert!(fds.len() == 2 && fds[0] == fds[1], "the file did not get the socket's fd number: {text}");
    assert_eq!(std::fs::read_to_string(&path).expect("read back"), format!("{request}{response}"));

    let spid = server.pid();
    rx.wait_for(1, WAIT, "the SERVER span of /before-exec", |s| s.is_server() && s.pid() == Some(spid));
    std::thread::sleep(Duration::from_millis(500));
    rx.stop();
    let paths = rx.spans_where(|s| s.url_path().is_some_and(|p| p.contains(&token)));
    assert!(paths.is_empty(), "spans for a file's content:\n{}", rx.dump(|s| s.describe().contains(&token), 10));
    assert!(
        !rx.raw_contains(token.as_bytes()),
        "the file's contents ({token}) appear in exported telemetry:\n{}",
        rx.dump(|s| s.describe().contains(&token), 10)
    );
}
