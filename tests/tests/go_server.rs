//! The Go demo server (net/http): one SERVER span per request with the HTTP
//! semantic conventions, one CLIENT span per curl, durations that include the
//! handler's 100 ms sleep, and OTEL_SERVICE_NAME honoured.

use std::time::Duration;

use integration_tests::scenario::{assert_resource, three_requests};
use integration_tests::{curl, require_root, unique_token, Expect, Receiver, Server, WAIT};

#[test]
fn go_server_requests_become_server_and_client_spans() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::from_millis(100), &[]);
    three_requests(&server, Some(Duration::from_millis(100)..=Duration::from_millis(150)));
}

#[test]
fn otel_service_name_of_the_server_process_wins() {
    if !require_root() {
        return;
    }
    let name = unique_token("checkout-");
    let server = Server::go("127.0.0.1", Duration::ZERO, &[("OTEL_SERVICE_NAME", &name)]);
    let mut rx = Receiver::start();
    let c = curl(&server.url("/named"));
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "SERVER span of the named server", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(1, WAIT, "CLIENT span of curl", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();

    let spans = rx.spans_where(|s| s.pid() == Some(spid));
    assert_eq!(spans.len(), 1, "{}", rx.dump(|s| s.pid() == Some(spid), 10));
    spans[0].assert_http(&Expect::get("/named", 200, server.port).client_port(c.local_ports[0]));
    assert_resource(&spans[0], std::slice::from_ref(&name), spid);

    // The client process has no OTEL_SERVICE_NAME: it keeps its executable name.
    let client = rx.spans_where(|s| s.pid() == Some(c.pid));
    assert_eq!(client.len(), 1, "{}", rx.dump(|s| s.pid() == Some(c.pid), 10));
    assert_resource(&client[0], &["curl".to_string()], c.pid);
}

#[test]
fn http_1_0_request_reports_protocol_version_1_0() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let c = integration_tests::curl_with(&[server.url("/old")], &["--http1.0"]);
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "SERVER span of the HTTP/1.0 request", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(1, WAIT, "CLIENT span of the HTTP/1.0 request", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();
    let srv = rx.spans_where(|s| s.pid() == Some(spid));
    let cli = rx.spans_where(|s| s.pid() == Some(c.pid));
    assert_eq!((srv.len(), cli.len()), (1, 1), "{}", rx.dump(|s| s.pid() == Some(spid) || s.pid() == Some(c.pid), 10));
    let exp = Expect::get("/old", 200, server.port).client_port(c.local_ports[0]).version("1.0");
    srv[0].assert_http(&exp);
    cli[0].assert_http(&exp);
}

#[test]
fn service_name_is_the_whole_executable_name_not_the_15_byte_comm() {
    if !require_root() {
        return;
    }
    // The kernel's task comm keeps 15 bytes ("demo-server-wit"); the
    // executable name is what a user recognizes.
    let name = "demo-server-with-a-long-executable-name";
    let server = Server::go_named(name, "127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let c = curl(&server.url("/long-name"));
    assert_eq!(c.codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "SERVER span of the long-named server", |s| s.is_server() && s.pid() == Some(spid));
    rx.stop();
    let spans = rx.spans_where(|s| s.pid() == Some(spid));
    assert_eq!(spans.len(), 1, "{}", rx.dump(|s| s.pid() == Some(spid), 10));
    assert_resource(&spans[0], &[name.to_string()], spid);
    assert_eq!(spans[0].res_str("process.executable.name"), Some(name), "{}", spans[0].describe());
}

#[test]
fn short_lived_client_keeps_its_whole_executable_name() {
    if !require_root() {
        return;
    }
    // curl exits right after its request, maybe before the receiver reads
    // its /proc entry: its spans must still name the executable in full.
    let name = "curl-with-a-long-executable-name";
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let mut rx = Receiver::start();
    let c = integration_tests::clients::curl_named(name, &server.url("/short-lived"));
    assert_eq!(c.codes, [200]);
    rx.wait_for(1, WAIT, "CLIENT span of the long-named curl", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();
    let spans = rx.spans_where(|s| s.pid() == Some(c.pid));
    assert_eq!(spans.len(), 1, "{}", rx.dump(|s| s.pid() == Some(c.pid), 10));
    spans[0].assert_http(&Expect::get("/short-lived", 200, server.port));
    assert_resource(&spans[0], &[name.to_string()], c.pid);
}
