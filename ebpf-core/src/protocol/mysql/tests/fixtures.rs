//! Byte-exact MariaDB 10.11 traffic (tests/fixtures/mysql/README.md)
//! replayed whole, split at every byte and at random, truncated at capture
//! sizes, from both sides, and with segments lost.

use super::*;
use crate::protocol::fixture::{direction, random_split, recording};
use crate::protocol::Chunk;

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
    for (name, segs) in all() {
        let (want, _) = play(&segs, Role::Client, usize::MAX, &mut whole);
        let (server, _) = play(&segs, Role::Server, usize::MAX, &mut whole);
        assert_eq!(descriptions(&server), descriptions(&want), "{name} from the server");
        assert!(server.iter().all(|o| o.role == Role::Server));
        let (bytewise, _) = play(&segs, Role::Client, usize::MAX, &mut |_, len| vec![1; len]);
        assert_eq!(descriptions(&bytewise), descriptions(&want), "{name} byte by byte");
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20 {
            let (random, _) = play(&segs, Role::Client, usize::MAX, &mut |_, len| random_split(&mut rng, len));
            assert_eq!(descriptions(&random), descriptions(&want), "{name} split at random");
        }
    }
}

/// An operation emitted under adverse conditions must be one of those of the
/// clean run, in order: same request segment, same command, same text (or
/// a cut prefix of it), same status (or Unknown), never invented.
fn assert_subsequence(name: &str, got: &[DbOperation], want: &[DbOperation]) {
    let mut w = want.iter();
    for g in got {
        let found = w.by_ref().find(|c| {
            c.start_ns / SEG_NS == g.start_ns / SEG_NS
                && c.command == g.command
                && match (&g.query, &c.query) {
                    (Some(gq), Some(cq)) => gq.text == cq.text || (gq.truncated && cq.text.starts_with(&*gq.text)),
                    (None, _) => true,
                    _ => false,
                }
                && (g.status == c.status
                    || g.status == DbStatus::Unknown
                    // An error whose SQLSTATE was past the capture.
                    || matches!((&g.status, &c.status), (DbStatus::Error(ge), DbStatus::Error(_)) if ge.code == "_OTHER"))
        });
        assert!(found.is_some(), "{name}: {} is not among the clean run's operations", describe(g));
    }
}

#[test]
fn truncated_captures_never_invent_operations() {
    for (name, segs) in all() {
        let (want, _) = play(&segs, Role::Client, usize::MAX, &mut whole);
        for capture in [0, 1, 5, 16, 64, 100, 256, 1024] {
            let (got, _) = play(&segs, Role::Client, capture, &mut whole);
            assert_subsequence(&format!("{name} capture {capture}"), &got, &want);
            if capture >= 1024 {
                assert_eq!(got.len(), want.len(), "{name}: all operations at capture {capture}");
            }
        }
    }
}

#[test]
fn lost_segments_never_invent_operations_and_recover() {
    for (name, segs) in all() {
        let (want, _) = play(&segs, Role::Client, usize::MAX, &mut whole);
        for lost in 0..segs.len() {
            let mut p = MysqlParser::new(SqlOptions::default());
            let mut got = Vec::new();
            for (i, seg) in segs.iter().enumerate() {
                if i == lost {
                    p.gap();
                    continue;
                }
                let data = &seg.bytes;
                p.feed(
                    &Chunk {
                        ts_ns: SEG_NS * (i as u64 + 1),
                        direction: direction(seg, Role::Client),
                        data,
                        total_len: data.len() as u64,
                    },
                    &mut got,
                );
            }
            p.close(&mut got);
            assert_subsequence(&format!("{name} without segment {lost}"), &got, &want);
            // A gap well before the end is recovered from: the last
            // operations still come out.
            if want.len() > 50 && lost + 20 < segs.len() && lost > 8 {
                assert_eq!(got.last().map(describe), want.last().map(describe), "{name} after losing {lost}");
            }
        }
    }
}
