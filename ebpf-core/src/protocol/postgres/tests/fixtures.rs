//! Byte-exact PostgreSQL 15 traffic (tests/fixtures/postgres/README.md)
//! replayed whole, split at every byte and at random, truncated at capture
//! sizes, from both sides, and with segments lost.

use super::*;
use crate::protocol::fixture::recording;

fn all() -> Vec<(&'static str, Vec<Segment>)> {
    vec![
        ("psql_session", recording!("postgres", "psql_session")),
        ("psycopg_session", recording!("postgres", "psycopg_session")),
        ("pgbench_select_prepared", recording!("postgres", "pgbench_select_prepared")),
        ("pgbench_tpcb_extended", recording!("postgres", "pgbench_tpcb_extended")),
        ("psql_tls", recording!("postgres", "psql_tls")),
        ("psql_bad_password", recording!("postgres", "psql_bad_password")),
    ]
}

fn descriptions(ops: &[DbOperation]) -> Vec<String> {
    ops.iter().map(describe).collect()
}

#[test]
fn psql_session() {
    let segs = recording!("postgres", "psql_session");
    let (ops, p) = play(&segs, Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "Q ok rows=- affected=- CREATE TABLE IF NOT EXISTS customers (id serial PRIMARY KEY, email text UNIQUE, card text, note text);",
            "Q ok rows=- affected=1 INSERT INTO customers (email, card, note) VALUES (?, ?, ?);",
            "Q ok rows=1 affected=- SELECT id, email FROM customers WHERE email = ?;",
            "Q 42P01 rows=- affected=- SELECT * FROM missing_table;",
            "Q 22012 rows=- affected=- SELECT ?/?;",
            "Q ok rows=- affected=- BEGIN;",
            "Q ok rows=- affected=1 UPDATE customers SET note = ? WHERE email = ?;",
            "Q ok rows=- affected=- COMMIT;",
            "Q ok rows=2 affected=- SELECT ? AS one ; SELECT ? AS two;",
            "Q ok rows=- affected=2 COPY customers ( email, card, note ) FROM STDIN",
            "Q ok rows=- affected=3 COPY customers (email) TO STDOUT;",
            "Q ok rows=- affected=- LISTEN fixture_channel;",
            "Q ok rows=- affected=- NOTIFY fixture_channel, ?;",
            "Q ok rows=- affected=- DO ?;",
            "Q ok rows=- affected=- SET application_name = ?;",
            "Q ok rows=300 affected=- SELECT g, repeat(?, ?) FROM generate_series(?, ?) AS g;",
        ]
    );
    assert_eq!(p.namespace().map(|n| &**n), Some("shop"));
    let q = |i: usize| ops[i].query.as_deref().expect("query");
    assert_eq!(q(0).summary.as_deref(), Some("CREATE TABLE customers"));
    assert_eq!(q(2).summary.as_deref(), Some("SELECT customers"));
    assert_eq!(q(2).collection.as_deref(), Some("customers"));
    assert_eq!(q(8).summary.as_deref(), Some("SELECT SELECT"));
    assert_eq!(q(8).operation, None, "two statements: no single operation");
    // Each query starts at its request segment and ends at its answer's.
    for op in &ops {
        assert!(op.start_ns < op.end_ns, "{op:?}");
        assert_eq!(op.role, Role::Client);
        assert_eq!(op.namespace.as_deref(), Some("shop"));
    }
    // No literal of the session made it into any text or summary.
    for op in &ops {
        let q = op.query.as_deref().expect("query");
        for secret in ["hunter2", "bob@example.com", "4111", "5500", "3400"] {
            assert!(!q.text.contains(secret) && !q.summary.as_deref().unwrap_or("").contains(secret), "{q:?}");
        }
    }
}

#[test]
fn psycopg_extended_prepared_and_pipelined() {
    let segs = recording!("postgres", "psycopg_session");
    let (ops, _) = play(&segs, Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops.len(), 111);
    assert_eq!(describe(&ops[0]), "X ok rows=1 affected=- SELECT id, email FROM customers WHERE email = $1");
    assert_eq!(describe(&ops[1]), "P ok rows=- affected=- SELECT count(*) FROM customers WHERE id > $1");
    // The statement prepared once, executed 100 times: 100 operations with its text.
    let executed: Vec<_> = ops[2..102].iter().map(describe).collect();
    assert!(
        executed.iter().all(|d| d == "X ok rows=1 affected=- SELECT count(*) FROM customers WHERE id > $1"),
        "{executed:?}"
    );
    assert_eq!(
        descriptions(&ops[102..]),
        [
            "X 23505 rows=- affected=- INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 INSERT INTO customers (email, card) VALUES ($1, $2)",
            "X ok rows=- affected=1 UPDATE customers SET note = $1 WHERE email = $2",
            "X ok rows=- affected=5 DELETE FROM customers WHERE email LIKE $1",
            "X ok rows=3 affected=- SELECT email FROM customers ORDER BY id",
        ]
    );
    let DbStatus::Error(e) = &ops[102].status else { panic!() };
    assert_eq!(e.sqlstate_class(), Some("23"));
}

#[test]
fn pgbench_prepared_and_extended() {
    let (ops, _) = play(&recording!("postgres", "pgbench_select_prepared"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops.len(), 101);
    assert_eq!(describe(&ops[0]), "P ok rows=- affected=- SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
    assert!(ops[1..]
        .iter()
        .all(|o| describe(o) == "X ok rows=1 affected=- SELECT abalance FROM pgbench_accounts WHERE aid = $1;"));
    let q = ops[1].query.as_deref().expect("query");
    assert_eq!((q.summary.as_deref(), q.operation.as_deref()), (Some("SELECT pgbench_accounts"), Some("SELECT")));

    let (ops, _) = play(&recording!("postgres", "pgbench_tpcb_extended"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops.len(), 21);
    let summaries: Vec<_> = ops[..7].iter().map(|o| o.query.as_ref().and_then(|q| q.summary.as_deref())).collect();
    assert_eq!(
        summaries,
        [
            Some("BEGIN"),
            Some("UPDATE pgbench_accounts"),
            Some("SELECT pgbench_accounts"),
            Some("UPDATE pgbench_tellers"),
            Some("UPDATE pgbench_branches"),
            Some("INSERT pgbench_history"),
            Some("END"),
        ]
    );
}

#[test]
fn tls_and_failed_authentication_give_nothing() {
    let (ops, p) = play(&recording!("postgres", "psql_tls"), Role::Client, usize::MAX, &mut whole);
    assert!(ops.is_empty() && p.is_tls());
    let (ops, p) = play(&recording!("postgres", "psql_bad_password"), Role::Client, usize::MAX, &mut whole);
    assert!(ops.is_empty() && !p.is_tls());
}

/// The same operations from the server's side, and however the bytes are
/// split into syscalls.
#[test]
fn any_split_and_either_side_give_the_same_operations() {
    checks::same_from_either_side_and_any_split::<PgParser>(&all(), describe);
}

#[test]
fn truncated_captures_never_invent_operations() {
    checks::truncation_invents_nothing::<PgParser>(&all(), describe);
}

#[test]
fn lost_segments_never_invent_operations_and_recover() {
    checks::lost_segments_invent_nothing_and_recover::<PgParser>(&all(), describe);
}
