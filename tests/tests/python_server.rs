//! The stdlib Python server (ThreadingHTTPServer: every connection is served
//! by another thread, so the pid reported must be the process, not the thread).

use integration_tests::scenario::three_requests;
use integration_tests::{require_root, Server};

#[test]
fn python_server_requests_become_server_and_client_spans() {
    if !require_root() {
        return;
    }
    let server = Server::python("127.0.0.1", &[]);
    three_requests(&server, None);
}
