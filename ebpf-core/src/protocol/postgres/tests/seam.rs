//! PostgreSQL through the seam: recognised by the connection tracker from
//! its startup, mid-way on a connection older than the receiver, and over
//! TLS; its records described as the database conventions say.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::protocol::fixture::{duration_points, int_attr, recording, shapes, str_attr, Traced, SERVER_PORT};
use crate::protocol::sql::QueryText;
use crate::protocol::Role;
use crate::Config;

const CLIENT: i32 = SpanKind::Client as i32;
const SERVER: i32 = SpanKind::Server as i32;
const UNSET: i32 = StatusCode::Unset as i32;
const ERROR: i32 = StatusCode::Error as i32;

fn psql_names() -> Vec<&'static str> {
    vec![
        "CREATE TABLE customers",
        "INSERT customers",
        "SELECT customers",
        "SELECT missing_table",
        "SELECT",
        "BEGIN",
        "UPDATE customers",
        "COMMIT",
        "SELECT SELECT",
        "COPY customers",
        "COPY customers",
        "LISTEN",
        "NOTIFY",
        "DO",
        "SET",
        "SELECT",
    ]
}

#[test]
fn a_psql_session_gives_client_spans_named_by_their_summaries() {
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&recording!("postgres", "psql_session"), false);
    c.close();
    let (spans, metrics) = c.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, psql_names());
    assert!(spans.iter().all(|s| s.kind == CLIENT));
    let s = &spans[2];
    assert_eq!(str_attr(s, "db.system.name"), Some("postgresql"));
    assert_eq!(str_attr(s, "db.namespace"), Some("shop"));
    assert_eq!(str_attr(s, "db.operation.name"), Some("SELECT"));
    assert_eq!(str_attr(s, "db.collection.name"), Some("customers"));
    assert_eq!(str_attr(s, "db.query.summary"), Some("SELECT customers"));
    assert_eq!(str_attr(s, "db.query.text"), Some("SELECT id, email FROM customers WHERE email = ?;"));
    assert_eq!(str_attr(s, "server.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(s, "server.port"), Some(i64::from(SERVER_PORT)));
    assert_eq!(int_attr(s, "network.peer.port"), Some(i64::from(SERVER_PORT)));
    assert_eq!((str_attr(s, "error.type"), s.status.as_ref().map_or(UNSET, |st| st.code)), (None, UNSET));
    // Errors: the SQLSTATE as status code and error type, status ERROR.
    let failed: Vec<(&str, Option<&str>, Option<&str>)> = spans
        .iter()
        .filter(|s| s.status.as_ref().is_some_and(|st| st.code == ERROR))
        .map(|s| (s.name.as_str(), str_attr(s, "db.response.status_code"), str_attr(s, "error.type")))
        .collect();
    assert_eq!(
        failed,
        [("SELECT missing_table", Some("42P01"), Some("42P01")), ("SELECT", Some("22012"), Some("22012"))]
    );
    // Two statements in one query: no single operation or collection.
    assert_eq!((str_attr(&spans[8], "db.operation.name"), str_attr(&spans[8], "db.collection.name")), (None, None));
    // Every literal of the session stayed home.
    for s in &spans {
        for kv in &s.attributes {
            let v = format!("{:?}", kv.value);
            for secret in ["hunter2", "bob@example.com", "4111", "5500", "3400"] {
                assert!(!v.contains(secret), "{}: {v}", kv.key);
            }
        }
    }
    // The metric: one series per summary and outcome, never the text.
    let points = duration_points(&metrics);
    assert_eq!(points.iter().map(|(_, n)| n).sum::<u64>(), 16);
    let select = points
        .iter()
        .find(|(a, _)| a.contains(&"db.query.summary=SELECT customers".to_string()))
        .expect("a SELECT customers series");
    assert_eq!(
        select.0,
        [
            "db.collection.name=customers",
            "db.namespace=shop",
            "db.operation.name=SELECT",
            "db.query.summary=SELECT customers",
            "db.system.name=postgresql",
            "server.address=127.0.0.1",
            &format!("server.port={SERVER_PORT}"),
        ]
    );
    assert!(points.iter().any(|(a, n)| *n == 1 && a.contains(&"error.type=42P01".to_string())));
    assert!(points.iter().all(|(a, _)| !a.iter().any(|kv| kv.starts_with("db.query.text"))));
    assert_eq!(c.tracker.parse_errors, 0);
}

#[test]
fn the_server_side_gives_server_spans_and_no_client_metric() {
    let mut c = Traced::new(Role::Server, true, Config::default());
    c.play(&recording!("postgres", "psql_session"), false);
    let (spans, metrics) = c.spans();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), psql_names());
    assert!(spans.iter().all(|s| s.kind == SERVER));
    assert_eq!(int_attr(&spans[0], "server.port"), Some(i64::from(SERVER_PORT)));
    assert_eq!(int_attr(&spans[0], "network.peer.port"), Some(51_000), "the client's port");
    assert!(duration_points(&metrics).is_empty());
}

#[test]
fn a_statement_prepared_once_and_executed_100_times_gives_100_spans_with_its_text() {
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&recording!("postgres", "psycopg_session"), false);
    let (spans, _) = c.spans();
    let text = "SELECT count(*) FROM customers WHERE id > $1";
    let with_text: Vec<&str> =
        spans.iter().filter(|s| str_attr(s, "db.query.text") == Some(text)).map(|s| s.name.as_str()).collect();
    assert_eq!(with_text.len(), 101);
    assert_eq!(with_text[0], "PREPARE customers", "the preparation is a span of its own");
    assert!(with_text[1..].iter().all(|n| *n == "SELECT customers"));
    let prepare = spans.iter().find(|s| s.name == "PREPARE customers").unwrap();
    assert_eq!(str_attr(prepare, "db.operation.name"), Some("PREPARE"));
    assert_eq!(str_attr(prepare, "db.query.summary"), None);
    // The unique violation in extended mode.
    let failed: Vec<_> = spans.iter().filter(|s| s.status.as_ref().is_some_and(|st| st.code == ERROR)).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "INSERT customers");
    assert_eq!(str_attr(failed[0], "error.type"), Some("23505"));
    assert_eq!(spans.len(), 111);
}

#[test]
fn a_connection_older_than_the_receiver_is_followed_from_its_next_query() {
    let segs = recording!("postgres", "psql_session");
    let mut clean = Traced::new(Role::Client, true, Config::default());
    clean.play(&segs, false);
    let (want, _) = clean.spans();
    // Joined at a frontend chunk (the 9th segment: a query), role unknown.
    for (from, side) in [(8, Role::Client), (8, Role::Server), (9, Role::Client)] {
        let mut c = Traced::new(side, false, Config::default());
        c.play(&segs[from..], false);
        let (spans, _) = c.spans();
        assert!(!spans.is_empty(), "joined at {from} ({side:?})");
        let tail: Vec<_> = shapes(&want[want.len() - spans.len()..]).into_iter().map(|(n, _, st)| (n, st)).collect();
        assert_eq!(
            spans.iter().map(|s| (s.name.clone(), s.status.as_ref().map_or(0, |st| st.code))).collect::<Vec<_>>(),
            tail
        );
        let kind = if side == Role::Client { CLIENT } else { SERVER };
        assert!(spans.iter().all(|s| s.kind == kind), "the role from the direction of the first request");
        assert_eq!(str_attr(&spans[0], "db.namespace"), None, "the startup was not seen");
        assert_eq!(c.tracker.parse_errors, 0);
    }
}

#[test]
fn tls_gives_the_same_spans_from_the_plaintext() {
    // The socket: SSLRequest, 'S', then ciphertext; the TLS probes then
    // deliver the plaintext, from its StartupMessage.
    let tls = recording!("postgres", "psql_tls");
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&tls[..3], false);
    assert_eq!(c.tracker.muted.len(), 1, "the socket capture stops at the switch");
    c.play(&recording!("postgres", "psql_session"), true);
    let (spans, _) = c.spans();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), psql_names());
    assert_eq!(str_attr(&spans[0], "db.namespace"), Some("shop"));
}

#[test]
fn query_text_is_raw_or_absent_only_when_configured() {
    let segs = recording!("postgres", "psql_session");
    let text = |query_text: QueryText| {
        let mut config = Config::default();
        config.protocols.postgresql.query_text = query_text;
        let mut c = Traced::new(Role::Client, true, config);
        c.play(&segs, false);
        let (spans, _) = c.spans();
        (str_attr(&spans[2], "db.query.text").map(str::to_string), spans[2].name.clone())
    };
    assert_eq!(text(QueryText::Sanitized).0.as_deref(), Some("SELECT id, email FROM customers WHERE email = ?;"));
    let raw = text(QueryText::Raw).0.expect("raw text");
    assert!(raw.starts_with("SELECT id, email FROM customers WHERE email = '"), "{raw}");
    assert_eq!(text(QueryText::Off), (None, "SELECT customers".to_string()));
}

#[test]
fn switched_off_it_is_not_recognised() {
    let mut config = Config::default();
    config.protocols.postgresql.enabled = false;
    let mut c = Traced::new(Role::Client, true, config);
    c.play(&recording!("postgres", "psql_session"), false);
    assert!(c.out.is_empty());
    assert_eq!(c.tracker.muted.len(), 1);
}

#[test]
fn requests_cut_by_lost_events_or_out_of_step_are_counted() {
    use std::sync::atomic::Ordering::Relaxed;
    let segs = recording!("postgres", "pgbench_select_prepared");
    // Segment n: the first execution's request; n + 1 its response, and so on.
    let n = segs.iter().position(|s| s.from_client && s.bytes.first() == Some(&b'B')).unwrap();
    let run = |lost: usize| {
        let mut c = Traced::new(Role::Client, true, Config::default());
        c.play(&segs[..lost], false);
        c.lose();
        c.play(&segs[lost + 1..], false);
        let (spans, _) = c.spans();
        (spans.len(), c.tracker.gaps, c.tracker.requests_lost)
    };
    // The 11th request lost: nothing was in flight, its response is skipped.
    assert_eq!(run(n + 20), (100, 1, 0));
    // The 11th response lost: its request was in flight; the 12th went out
    // before a ReadyForQuery showed where responses start again.
    assert_eq!(run(n + 21), (99, 1, 1));
    // A response that answers nothing asked: what was in flight is given up.
    let mut c = Traced::new(Role::Client, true, Config::default());
    c.play(&segs[..n + 1], false);
    let parse_complete = crate::protocol::fixture::Segment { from_client: false, bytes: b"1\0\0\0\x04".to_vec() };
    c.play(&[parse_complete], false);
    assert_eq!(c.stats.requests_unmatched.load(Relaxed), 1);
    // Followed again from the next request after a ReadyForQuery.
    c.play(&segs[n + 1..n + 6], false);
    let (spans, _) = c.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["PREPARE pgbench_accounts", "SELECT pgbench_accounts", "SELECT pgbench_accounts"]);
}

#[test]
fn recognition_by_first_bytes_and_direction() {
    use crate::protocol::postgres::recognise;
    use crate::protocol::{Direction, Hint, Recognition};
    let hint = |data: &'static [u8], direction: Direction, role: Option<Role>, port: u16| Hint {
        data,
        total_len: data.len() as u64,
        direction,
        role,
        local_port: Some(50_000),
        peer_port: Some(port),
        tls: false,
    };
    let (r, e, i) = (Some(Role::Client), Direction::Egress, Direction::Ingress);
    let startup: &'static [u8] = b"\x00\x00\x00\x08\x04\xd2\x16\x2f";
    assert_eq!(recognise(&hint(startup, e, r, 9)), Recognition::Certain, "SSLRequest");
    assert_eq!(recognise(&hint(startup, i, r, 9)), Recognition::No, "a client does not receive it");
    let query: &'static [u8] = b"Q\x00\x00\x00\x0dSELECT 1;\x00";
    assert_eq!(recognise(&hint(query, e, None, 9)), Recognition::Plausible);
    assert_eq!(recognise(&hint(query, i, None, 9)), Recognition::Plausible, "a server reading it");
    assert_eq!(recognise(&hint(query, e, r, 5432)), Recognition::Certain);
    let ready: &'static [u8] = b"C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I";
    assert_eq!(recognise(&hint(ready, i, r, 9)), Recognition::Plausible);
    assert_eq!(recognise(&hint(&ready[..14], i, r, 9)), Recognition::No, "no ReadyForQuery at its end");
    for other in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\n",
        b"DELETE /x HTTP/1.1\r\n",
        b"SUBSCRIBE news\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"Q\x00\x00\x00\x0d\x01\x02binary",
        b"*1\r\n$4\r\nPING\r\n",
    ] {
        for d in [e, i] {
            assert_eq!(recognise(&hint(other, d, None, 9)), Recognition::No, "{other:?}");
        }
    }
}
