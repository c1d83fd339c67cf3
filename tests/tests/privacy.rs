//! Privacy by default: credentials in headers, API keys in query strings and
//! request bodies never appear in any exported signal (spans and metrics),
//! while the request itself is reported.

use integration_tests::{curl_with, require_root, Receiver, Server, WAIT};

const SECRETS: &[&str] = &["Bearer-tok-5e1f", "session-9c2d", "apikey-77ab", "body-secret-31f0", "pw-hunter2-x"];

#[test]
fn no_secret_leaves_the_host() {
    if !require_root() {
        return;
    }
    // Metrics every 200 ms so their batches are checked too.
    let rx = Receiver::start_with(r#"{"batch": {"timeout_ms": 200}, "metrics": {"interval_ms": 200}}"#);
    let server = Server::python("127.0.0.1", &[]);
    let url = server.url(&format!("/login?api_key={}&user=alice", SECRETS[2]));
    let out = curl_with(
        &[url],
        &[
            "-H",
            &format!("Authorization: {}", SECRETS[0]),
            "-H",
            &format!("Cookie: sid={}", SECRETS[1]),
            "--data",
            &format!("{}&password={}", SECRETS[3], SECRETS[4]),
        ],
    );
    assert_eq!(out.codes, vec![200], "the POST was answered");
    let port = server.port;
    let spans = rx.wait_for(2, WAIT, "server and client span of the POST", |s| {
        s.int_attr("server.port") == Some(i64::from(port)) && s.str_attr("url.path") == Some("/login")
    });
    assert!(spans.iter().any(|s| s.str_attr("http.request.method") == Some("POST")));
    integration_tests::wait_until(WAIT, || (rx.other_batches() > 0).then_some(())).expect("a metrics batch arrived");
    for secret in SECRETS {
        assert!(!rx.raw_contains(secret.as_bytes()), "{secret} reached an exported signal");
    }
    assert!(!rx.raw_contains(b"api_key"), "query string keys are not exported either");
}
