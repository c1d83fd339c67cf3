//! Harness of the end-to-end tests: real servers and clients run as child
//! processes, the receiver runs in this process through its C ABI (the same
//! `extern "C"` functions a C host calls), and the tests check the spans it
//! emits the way a user would.
//!
//! The receiver sees every process on the host and never traces its own, so
//! every server and client is a child process and tests select their spans by
//! the child's pid or the server's port. Run them one at a time, as root:
//!
//! ```text
//! cargo test -p integration-tests -- --test-threads=1
//! ```
//!
//! Modules: [`receiver`] (the C ABI wrapper and span collection), [`span`]
//! (span accessors and assertions), [`scenario`] (checks shared by several
//! test files), [`servers`] (Go demo server, Python server,
//! nginx), [`databases`] (PostgreSQL and MariaDB, once per process), [`messaging`] (Kafka, MongoDB and MQTT servers, once per process), [`kv`] (redis-server and memcached, once per process, and their clients), [`h2`] (HTTP/2 and gRPC servers, once per process, and their clients), [`clients`] (curl and a keep-alive Python client), [`util`] (ports,
//! temp dirs, deadlines, privileges).

pub mod bpf_links;
pub mod clients;
pub mod databases;
pub mod genai;
pub mod h2;
pub mod kv;
pub mod messaging;
pub mod metric_points;
pub mod netlab;
pub mod receiver;
pub mod recording;
pub mod scenario;
pub mod servers;
pub mod span;
pub mod tls;
pub mod util;

pub use clients::{curl, curl_keepalive, curl_with, python_keepalive, CurlResult, PyConn, PyRequest, PyResult};
pub use receiver::Receiver;
pub use servers::{Server, ServerKind};
pub use span::{assert_wall_clock, Expect, SpanRec};
pub use util::{contains_bytes, free_port, require_root, unique_token, wait_until, TempDir, WAIT};
