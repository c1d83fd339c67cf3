//! Byte-exact MariaDB 10.11 traffic (tests/fixtures/mysql/README.md)
//! replayed whole, split at every byte and at random, truncated at capture
//! sizes, from both sides, and with segments lost.

use super::*;
use crate::protocol::fixture::recording;

fn all() -> Vec<(&'static str, Vec<Segment>)> {
    vec![
        ("mysql_session", recording!("mysql", "mysql_session")),
        ("pymysql_session", recording!("mysql", "pymysql_session")),
        ("connector_prepared", recording!("mysql", "connector_prepared")),
        ("mysql_compressed", recording!("mysql", "mysql_compressed")),
        ("mysql_tls", recording!("mysql", "mysql_tls")),
        ("mysql_bad_password", recording!("mysql", "mysql_bad_password")),
    ]
}

fn descriptions(ops: &[DbOperation]) -> Vec<String> {
    ops.iter().map(describe).collect()
}

#[test]
fn mysql_cli_session() {
    let (ops, p) = play(&recording!("mysql", "mysql_session"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "Q ok rows=- affected=0 db=shop CREATE TABLE IF NOT EXISTS customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(?) UNIQUE, card VARCHAR(?), note TEXT)",
            // 'it\'s hunter2': whether the backslash escapes depends on
            // NO_BACKSLASH_ESCAPES, so the sanitized text stops there.
            "Q ok rows=- affected=1 db=shop INSERT INTO customers (email, card, note) VALUES (?, ?, ?",
            "Q ok rows=1 affected=- db=shop SELECT id, email FROM customers WHERE email = ?",
            "Q 1146/42S02 rows=- affected=- db=shop SELECT * FROM missing_table",
            "Q ok rows=- affected=0 db=shop BEGIN",
            "Q ok rows=- affected=1 db=shop UPDATE customers SET note = ? WHERE email = ?",
            "Q ok rows=- affected=0 db=shop COMMIT",
            "Q ok rows=2 affected=- db=shop SELECT ? AS one; SELECT ? AS two",
            "Q ok rows=1 affected=- db=shop SELECT DATABASE()",
            "INIT_DB ok rows=- affected=0 db=other -",
            "Q ok rows=1 affected=- db=other SELECT DATABASE()",
            "Q ok rows=300 affected=- db=other SELECT seq, REPEAT(?, ?) FROM seq_1_to_300",
        ]
    );
    assert_eq!(p.flavor().map(|f| f.system()), Some("mariadb"));
    assert!(ops.iter().all(|o| o.system == "mariadb" && o.role == Role::Client && o.start_ns < o.end_ns));
    assert!(ops[1].query.as_ref().is_some_and(|q| q.truncated));
    let q = ops[2].query.as_deref().expect("query");
    assert_eq!((q.summary.as_deref(), q.collection.as_deref()), (Some("SELECT customers"), Some("customers")));
    for op in &ops {
        let q = op.query.as_deref().map_or("", |q| &q.text);
        for secret in ["hunter2", "bob@example.com", "4111"] {
            assert!(!q.contains(secret), "{q}");
        }
    }
}

#[test]
fn pymysql_session() {
    let (ops, _) = play(&recording!("mysql", "pymysql_session"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops.len(), 14);
    assert_eq!(describe(&ops[2]), "Q ok rows=1 affected=- db=shop SELECT count(*) FROM customers WHERE id > ?");
    assert_eq!(
        descriptions(&ops[7..]),
        [
            "Q 1062/23000 rows=- affected=- db=shop INSERT INTO customers (email, card) VALUES (?, ?)",
            "Q ok rows=- affected=5 db=shop INSERT INTO customers (email, card) VALUES (?, ?),(?, ?),(?, ?),(?, ?),(?, ?)",
            "PING ok rows=- affected=0 db=shop -",
            "INIT_DB ok rows=- affected=0 db=other -",
            "Q ok rows=1 affected=- db=other SELECT DATABASE()",
            "INIT_DB ok rows=- affected=0 db=shop -",
            "Q ok rows=- affected=5 db=shop DELETE FROM customers WHERE email LIKE ?",
        ]
    );
}

#[test]
fn connector_prepared_statements() {
    let (ops, _) = play(&recording!("mysql", "connector_prepared"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops.len(), 109);
    assert_eq!(describe(&ops[3]), "P ok rows=- affected=- db=shop SELECT count(*) FROM customers WHERE id > ?");
    // Prepared once, executed 100 times: 100 operations with its text.
    assert!(ops[4..104]
        .iter()
        .all(|o| describe(o) == "X ok rows=1 affected=- db=shop SELECT count(*) FROM customers WHERE id > ?"));
    assert_eq!(
        descriptions(&ops[104..]),
        [
            "P ok rows=- affected=- db=shop INSERT INTO customers (email, card) VALUES (?, ?)",
            "X 1062/23000 rows=- affected=- db=shop INSERT INTO customers (email, card) VALUES (?, ?)",
            "P 1064/42000 rows=- affected=- db=shop SELEC broken FROM nowhere WHERE a = ?",
            "P ok rows=- affected=- db=shop SELECT id, email, card FROM customers ORDER BY id",
            "X ok rows=1 affected=- db=shop SELECT id, email, card FROM customers ORDER BY id",
        ]
    );
}

#[test]
fn compressed_tls_and_failed_login_give_nothing() {
    let (ops, p) = play(&recording!("mysql", "mysql_compressed"), Role::Client, usize::MAX, &mut whole);
    assert!(ops.is_empty());
    assert_eq!(p.compressed(), 3);
    let (ops, p) = play(&recording!("mysql", "mysql_tls"), Role::Client, usize::MAX, &mut whole);
    assert!(ops.is_empty() && p.is_tls());
    let (ops, p) = play(&recording!("mysql", "mysql_bad_password"), Role::Client, usize::MAX, &mut whole);
    assert!(ops.is_empty() && !p.is_tls());
}

/// The same operations from the server's side, and however the bytes are
/// split into syscalls.
#[test]
fn any_split_and_either_side_give_the_same_operations() {
    checks::same_from_either_side_and_any_split::<MysqlParser>(&all(), describe);
}

#[test]
fn truncated_captures_never_invent_operations() {
    checks::truncation_invents_nothing::<MysqlParser>(&all(), describe);
}

#[test]
fn lost_segments_never_invent_operations_and_recover() {
    checks::lost_segments_invent_nothing_and_recover::<MysqlParser>(&all(), describe);
}
