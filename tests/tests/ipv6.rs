//! IPv6 loopback: addresses come out as `::1` (not `[::1]`, not `::ffff:...`).

use std::time::Duration;

use integration_tests::scenario::three_requests;
use integration_tests::{curl, require_root, Expect, Receiver, Server, WAIT};

#[test]
fn go_server_on_ipv6_loopback() {
    if !require_root() {
        return;
    }
    let server = Server::go("::1", Duration::from_millis(100), &[]);
    three_requests(&server, Some(Duration::from_millis(100)..=Duration::from_millis(150)));
}

#[test]
fn python_server_on_ipv6_loopback() {
    if !require_root() {
        return;
    }
    let server = Server::python("::1", &[]);
    three_requests(&server, None);
}

#[test]
fn nginx_on_ipv6_loopback() {
    if !require_root() {
        return;
    }
    let server = Server::nginx("::1", &[]);
    three_requests(&server, None);
}

#[test]
fn ipv4_client_of_a_dual_stack_server_is_reported_as_ipv4() {
    if !require_root() {
        return;
    }
    // Listening on [::] accepts IPv4 as IPv4-mapped IPv6 (::ffff:127.0.0.1);
    // OTel addresses are the plain IPv4 form, as the application itself sees them.
    let server = Server::go_listening_on("::", "127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let c = curl(&server.url("/mapped"));
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "SERVER span of the dual-stack server", |s| s.is_server() && s.pid() == Some(spid));
    rx.stop();
    let srv = rx.spans_where(|s| s.pid() == Some(spid));
    assert_eq!(srv.len(), 1, "{}", rx.dump(|s| s.pid() == Some(spid), 10));
    srv[0].assert_http(&Expect::get("/mapped", 200, server.port).client_port(c.local_ports[0]));
}
