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
