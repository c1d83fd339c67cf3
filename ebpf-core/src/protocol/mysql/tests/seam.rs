//! MySQL/MariaDB through the seam: recognised from the greeting, mid-way on
//! a connection older than the receiver, over TLS (the server's product
//! carried over from the greeting in the clear), compressed connections
//! counted; records described as the database conventions say.

use std::sync::atomic::Ordering::Relaxed;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::protocol::fixture::{duration_points, recording, str_attr, Segment, Traced};
use crate::protocol::mysql::recognise;
use crate::protocol::{Direction, Hint, Recognition, Role};
use crate::Config;

const ERROR: i32 = StatusCode::Error as i32;

fn names(c: &Traced) -> Vec<String> {
    c.spans().0.into_iter().map(|s| s.name).collect()
}

fn mysql_names() -> Vec<&'static str> {
    vec![
        "CREATE TABLE customers",
        "INSERT customers",
        "SELECT customers",
        "SELECT missing_table",
        "BEGIN",
        "UPDATE customers",
        "COMMIT",
        "SELECT SELECT",
        "SELECT",
        "INIT_DB other",
        "SELECT",
        "SELECT seq_1_to_300",
    ]
}

#[test]
fn a_mysql_cli_session_gives_mariadb_spans() {
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&recording!("mysql", "mysql_session"), false);
    c.close();
    assert_eq!(names(&c), mysql_names());
    let (spans, metrics) = c.spans();
    assert!(spans.iter().all(|s| s.kind == SpanKind::Client as i32));
    assert!(spans.iter().all(|s| str_attr(s, "db.system.name") == Some("mariadb")));
    let failed: Vec<_> = spans.iter().filter(|s| s.status.as_ref().is_some_and(|st| st.code == ERROR)).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (str_attr(failed[0], "db.response.status_code"), str_attr(failed[0], "error.type")),
        (Some("1146"), Some("1146")),
        "the error number, not the SQLSTATE"
    );
    let init = &spans[9];
    assert_eq!((str_attr(init, "db.operation.name"), str_attr(init, "db.namespace")), (Some("INIT_DB"), Some("other")));
    assert_eq!(str_attr(&spans[10], "db.namespace"), Some("other"), "the database the connection changed to");
    assert_eq!(str_attr(&spans[2], "db.query.text"), Some("SELECT id, email FROM customers WHERE email = ?"));
    for s in &spans {
        for kv in &s.attributes {
            let v = format!("{:?}", kv.value);
            assert!(!v.contains("hunter2") && !v.contains("bob@example.com") && !v.contains("4111"), "{v}");
        }
    }
    let points = duration_points(&metrics);
    assert_eq!(points.iter().map(|(_, n)| n).sum::<u64>(), 12);
    assert!(points.iter().any(|(a, _)| a.contains(&"db.system.name=mariadb".to_string())));
}

#[test]
fn prepared_once_and_executed_100_times_gives_100_spans_with_the_prepared_text() {
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&recording!("mysql", "connector_prepared"), false);
    let (spans, _) = c.spans();
    let text = "SELECT count(*) FROM customers WHERE id > ?";
    let with_text: Vec<&str> =
        spans.iter().filter(|s| str_attr(s, "db.query.text") == Some(text)).map(|s| s.name.as_str()).collect();
    assert_eq!(with_text.len(), 101);
    assert_eq!(with_text[0], "PREPARE customers");
    assert!(with_text[1..].iter().all(|n| *n == "SELECT customers"));
    let failed: Vec<(&str, Option<&str>)> = spans
        .iter()
        .filter(|s| s.status.as_ref().is_some_and(|st| st.code == ERROR))
        .map(|s| (s.name.as_str(), str_attr(s, "error.type")))
        .collect();
    // An execution failing, and a preparation failing (a syntax error: no collection read).
    assert_eq!(failed, [("INSERT customers", Some("1062")), ("PREPARE", Some("1064"))]);
}

#[test]
fn tls_spans_know_the_server_from_the_greeting_in_the_clear() {
    let tls = recording!("mysql", "mysql_tls");
    let session = recording!("mysql", "mysql_session");
    for side in [Role::Client, Role::Server] {
        let mut c = Traced::new(side, true, Config::default());
        // Greeting and SSL request at the socket; then the plaintext, from the login.
        c.play(&tls[..2], false);
        assert_eq!(c.tracker.muted.len(), 1, "the socket capture stops at the switch");
        c.play(&session[1..], true);
        assert_eq!(names(&c), mysql_names());
        assert!(c.spans().0.iter().all(|s| str_attr(s, "db.system.name") == Some("mariadb")));
    }
    // Without the greeting (plaintext only): followed from the login, product unknown.
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&session[1..], true);
    assert_eq!(names(&c), mysql_names());
    assert!(c.spans().0.iter().all(|s| str_attr(s, "db.system.name") == Some("mysql")));
}

#[test]
fn a_connection_older_than_the_receiver_is_followed_from_its_next_command() {
    let segs = recording!("mysql", "pymysql_session");
    let mut clean = Traced::new(Role::Client, true, Config::default());
    clean.play(&segs, false);
    let want = names(&clean);
    for side in [Role::Client, Role::Server] {
        // From a command (segment 5), and from a response (segment 6).
        for from in [5, 6] {
            let mut c = Traced::new(side, false, Config::default());
            c.play(&segs[from..], false);
            let got = names(&c);
            assert!(got.len() >= want.len() - 4, "joined at {from}: {got:?}");
            assert_eq!(got[..], want[want.len() - got.len()..], "joined at {from}");
            let kind = if side == Role::Client { SpanKind::Client } else { SpanKind::Server } as i32;
            assert!(c.spans().0.iter().all(|s| s.kind == kind));
        }
    }
}

#[test]
fn compressed_connections_are_counted_and_muted() {
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&recording!("mysql", "mysql_compressed"), false);
    assert!(c.out.is_empty());
    assert_eq!(c.stats.mysql_compressed.load(Relaxed), 1);
    assert_eq!(c.tracker.muted.len(), 1);
    assert_eq!(c.tracker.parse_errors, 0);
}

#[test]
fn a_driver_reading_the_greeting_header_first_is_followed() {
    let segs = recording!("mysql", "connector_prepared");
    let mut split = vec![
        Segment { from_client: false, bytes: segs[0].bytes[..4].to_vec() },
        Segment { from_client: false, bytes: segs[0].bytes[4..].to_vec() },
    ];
    split.extend(segs[1..].iter().cloned());
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&split, false);
    assert_eq!(c.spans().0.len(), 109);
    assert!(c.spans().0.iter().all(|s| str_attr(s, "db.system.name") == Some("mariadb")));
}

#[test]
fn recognition_by_first_bytes_and_direction() {
    let hint = |data: &'static [u8], direction: Direction, role: Option<Role>, port: u16| Hint {
        data,
        total_len: data.len() as u64,
        direction,
        role,
        local_port: Some(50_000),
        peer_port: Some(port),
        tls: false,
    };
    let greeting = recording!("mysql", "mysql_session")[0].bytes.clone();
    let greeting: &'static [u8] = greeting.leak();
    let (r, c, s) = (Some(Role::Client), Direction::Ingress, Direction::Egress);
    assert_eq!(recognise(&hint(greeting, c, r, 9)), Recognition::Certain);
    assert_eq!(recognise(&hint(greeting, s, r, 9)), Recognition::No, "a client does not send the greeting");
    assert_eq!(recognise(&hint(&greeting[..4], c, r, 9)), Recognition::Plausible);
    assert_eq!(recognise(&hint(&greeting[..4], c, None, 9)), Recognition::No, "a header alone needs the role");
    let query: &'static [u8] = b"\x09\x00\x00\x00\x03SELECT 1";
    assert_eq!(recognise(&hint(query, s, r, 9)), Recognition::Plausible);
    assert_eq!(recognise(&hint(query, s, None, 3306)), Recognition::Certain);
    assert_eq!(recognise(&hint(query, c, r, 9)), Recognition::No, "a client does not receive commands");
    let ok: &'static [u8] = b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00";
    assert_eq!(recognise(&hint(ok, c, None, 9)), Recognition::Plausible);
    for other in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        b"*1\r\n$4\r\nPING\r\n",
        b"\x09\x00\x00\x00\x03SELECT 1 and more bytes than the packet",
    ] {
        for d in [c, s] {
            assert_eq!(recognise(&hint(other, d, None, 9)), Recognition::No, "{other:?}");
        }
    }
}
