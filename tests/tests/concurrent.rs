//! Many requests at once, over several connections of one client process and
//! several server goroutines: still exactly one span per request on each side.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::scenario::{assert_resource, related};
use integration_tests::{require_root, Expect, Receiver, Server, WAIT};

#[test]
fn parallel_requests_each_get_one_server_and_one_client_span() {
    if !require_root() {
        return;
    }
    const N: usize = 40;
    let server = Server::go("127.0.0.1", Duration::from_millis(100), &[]);
    let paths: Vec<String> = (0..N).map(|i| format!("/par/{i}")).collect();
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();

    let mut rx = Receiver::start();
    let c = integration_tests::clients::curl_with(&urls, &["--parallel", "--parallel-max", "10"]);
    assert!(c.codes.iter().all(|code| *code == 200), "{:?}", c.codes);
    let spid = server.pid();
    rx.wait_for(N, WAIT, "SERVER spans of parallel requests", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(N, WAIT, "CLIENT spans of the parallel curl", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();

    let dump = rx.dump(related(&server, &[c.pid]), 3 * N);
    let rel = rx.spans_where(related(&server, &[c.pid]));
    assert_eq!(rel.len(), 2 * N, "{N} SERVER + {N} CLIENT spans, no more:\n{dump}");
    let mut per_path: HashMap<(bool, String), usize> = HashMap::new();
    for s in &rel {
        let path = s.url_path().unwrap_or("-").to_string();
        *per_path.entry((s.is_server(), path.clone())).or_default() += 1;
        let exp = Expect::get(&path, 200, server.port);
        s.assert_http(&exp);
        if s.is_server() {
            assert_resource(s, &["demo-server".to_string()], spid);
            // IDs in paths must not explode route cardinality: one route for all.
            if let Some(route) = s.str_attr("http.route") {
                assert_eq!(route, "/par/{id}", "{}", s.describe());
            }
            assert!(s.duration() >= Duration::from_millis(100), "{}", s.describe());
        } else {
            assert_resource(s, &["curl".to_string()], c.pid);
        }
    }
    for p in &paths {
        for server_side in [true, false] {
            assert_eq!(
                per_path.get(&(server_side, p.clone())),
                Some(&1),
                "exactly one {} span for {p}:\n{dump}",
                if server_side { "SERVER" } else { "CLIENT" }
            );
        }
    }
}
