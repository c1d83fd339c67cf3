use super::*;

const PG: Dialect = Dialect::Postgres;
const MY: Dialect = Dialect::MySql;

/// Secrets a user would hate to see exported; every privacy test plants
/// some of them in literals and checks that no output holds any piece.
const SECRETS: &[&str] = &["hunter2", "4111", "1111", "bob@example.com", "example", "s3cr3t", "0xDEAD", "DEAD"];

fn assert_no_secret(out: &str, input: &str) {
    for s in SECRETS {
        assert!(!out.contains(s), "{s:?} leaked from {input:?}: {out:?}");
    }
}

#[test]
fn sanitize_replaces_literals() {
    let cases: &[(Dialect, &str, &str)] = &[
        (PG, "SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = ?"),
        (PG, "SELECT * FROM t WHERE a = 'x' AND b = -1.5e10", "SELECT * FROM t WHERE a = ? AND b = -?"),
        (PG, "select 'it''s', E'a\\'b', $$dollar$$, $x$ta$g$x$", "select ?, ?, ?, ?"),
        (PG, "SELECT \"Weird\"\"Name\" FROM \"public\".\"T\"", "SELECT \"Weird\"\"Name\" FROM \"public\".\"T\""),
        (PG, "SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
        (PG, "SELECT * FROM t WHERE id in ('a','b')", "SELECT * FROM t WHERE id in (?)"),
        (PG, "SELECT * FROM t WHERE id IN ($1, $2)", "SELECT * FROM t WHERE id IN ($1, $2)"),
        (
            PG,
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = ?)",
        ),
        (
            PG,
            "SELECT a::int, b FROM t WHERE c = $1 -- trailing\n LIMIT 10",
            "SELECT a::int, b FROM t WHERE c = $1 LIMIT ?",
        ),
        (PG, "SELECT /* c */ 1", "SELECT ?"),
        (PG, "SELECT TRUE, false, NULL", "SELECT ?, ?, NULL"),
        (PG, "SELECT x'1F', B'0101', U&'d\\0061t'", "SELECT ?, ?, ?"),
        (PG, "  SELECT\n\t1  ", "SELECT ?"),
        (MY, "SELECT * FROM `t` WHERE a = \"str\" AND b = 0x1F # comment", "SELECT * FROM `t` WHERE a = ? AND b = ?"),
        (MY, "INSERT INTO t VALUES (1, 'a'), (2, 'b')", "INSERT INTO t VALUES (?, ?), (?, ?)"),
        (MY, "SELECT _utf8mb4'x', N'y', b'1'", "SELECT _utf8mb4?, ?, ?"),
        (MY, "UPDATE t SET a = ? WHERE b = ?", "UPDATE t SET a = ? WHERE b = ?"),
    ];
    for (d, input, want) in cases {
        assert_eq!(sanitize(input, *d), *want, "{input:?}");
    }
}

#[test]
fn sanitize_never_leaks_on_tricky_text() {
    let cases: &[(Dialect, &str)] = &[
        // Escaped quotes, both readings.
        (PG, r"SELECT 'a\' , 'hunter2'"),
        (MY, r"SELECT 'a\' , 'hunter2'"),
        (MY, r#"SELECT "a\" , "hunter2""#),
        (PG, r"SELECT E'it\'s hunter2'"),
        (PG, r"SELECT e'\\', 'hunter2'"),
        (MY, r"SELECT 'it''s hunter2', 'x\\', 'bob@example.com'"),
        // Unterminated strings and comments.
        (PG, "SELECT * FROM t WHERE pw = 'hunter2"),
        (MY, "SELECT * FROM t WHERE pw = \"hunter2"),
        (PG, "SELECT 1 /* hunter2"),
        (PG, "SELECT 1 /* a /* b */ 'hunter2' */"),
        (MY, "SELECT 1 /* a /* b */ 'hunter2' */"),
        (MY, "SELECT /*!50001 'hunter2' */ 1"),
        (PG, "SELECT $$hunter2"),
        (PG, "SELECT $tag$ 'x' $other$ hunter2"),
        // Numbers in all shapes: credit-card-like.
        (PG, "INSERT INTO cards VALUES (4111111111111111, '4111 1111 1111 1111')"),
        (MY, "INSERT INTO cards VALUES (4111-1111-1111-1111, 4111.1111e1111)"),
        (MY, "SELECT 0xDEAD, X'DEAD', 0b1111"),
        (PG, "SELECT .4111, 4111., 1_111"),
        // E-mail addresses and passwords in odd places.
        (PG, "ALTER USER bob PASSWORD 's3cr3t'"),
        (MY, "CREATE USER 'bob'@'example.com' IDENTIFIED BY 's3cr3t'"),
        (MY, "SET PASSWORD = PASSWORD('hunter2')"),
        (PG, "SELECT * FROM t WHERE mail = U&'bob@example.com'"),
        (PG, "COPY t FROM '/tmp/hunter2.csv'"),
        // Not SQL at all.
        (PG, "'hunter2"),
        (MY, "\"\"\"hunter2"),
        (PG, "\u{0}'hunter2'"),
    ];
    for (d, input) in cases {
        let out = sanitize(input, *d);
        assert_no_secret(&out, input);
        // Every prefix too: a capture can end anywhere.
        for cut in 0..=input.len() {
            if input.is_char_boundary(cut) {
                let info = QueryInfo::analyze(&input.as_bytes()[..cut], cut == input.len(), *d, SqlOptions::default());
                assert_no_secret(&info.text, &input[..cut]);
                assert_no_secret(info.summary.as_deref().unwrap_or(""), &input[..cut]);
            }
        }
    }
}

#[test]
fn ambiguous_quote_ends_text() {
    assert_eq!(sanitize(r"SELECT a FROM t WHERE x = 'a\' AND y = 'hunter2'", MY), "SELECT a FROM t WHERE x = ?");
    let info = QueryInfo::analyze(br"SELECT 'a\' , 'b'", true, PG, SqlOptions::default());
    assert!(info.truncated);
}

fn summary(sql: &str, d: Dialect) -> (String, Option<String>, Option<String>) {
    let s = summarize(sql.as_bytes(), d);
    (s.text, s.operation, s.collection)
}

#[test]
fn summaries_follow_the_conventions_examples() {
    let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
        ("SELECT * FROM wuser_table WHERE username = ?", "SELECT wuser_table", Some("SELECT"), Some("wuser_table")),
        (
            "INSERT INTO shipping_details (order_id, address) SELECT order_id, address FROM orders WHERE order_id = ?",
            "INSERT shipping_details SELECT orders",
            Some("INSERT"),
            None,
        ),
        (
            "SELECT * FROM songs, artists WHERE songs.artist_id == artists.id",
            "SELECT songs artists",
            Some("SELECT"),
            None,
        ),
        (
            "SELECT order_date FROM (SELECT * FROM orders o JOIN customers c ON o.customer_id = c.customer_id)",
            "SELECT SELECT orders customers",
            Some("SELECT"),
            None,
        ),
        ("SELECT * FROM \"song list\", artists", "SELECT \"song list\" artists", Some("SELECT"), None),
        ("select id from public.users u where u.id = $1", "select public.users", Some("select"), Some("public.users")),
        (
            "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
            "UPDATE accounts",
            Some("UPDATE"),
            Some("accounts"),
        ),
        ("DELETE FROM sessions WHERE expires < now()", "DELETE sessions", Some("DELETE"), Some("sessions")),
        (
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = excluded.a",
            "INSERT t",
            Some("INSERT"),
            Some("t"),
        ),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2", "INSERT t", Some("INSERT"), Some("t")),
        ("SELECT * FROM t FOR UPDATE", "SELECT t", Some("SELECT"), Some("t")),
        (
            "CREATE TABLE IF NOT EXISTS pgbench_accounts (aid int)",
            "CREATE TABLE pgbench_accounts",
            Some("CREATE TABLE"),
            Some("pgbench_accounts"),
        ),
        ("create unique index concurrently idx_a on t (a)", "create index idx_a", Some("create index"), Some("idx_a")),
        ("DROP TABLE IF EXISTS a", "DROP TABLE a", Some("DROP TABLE"), Some("a")),
        (
            "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t",
            "CREATE MATERIALIZED VIEW mv SELECT t",
            Some("CREATE MATERIALIZED VIEW"),
            None,
        ),
        ("TRUNCATE TABLE pgbench_history", "TRUNCATE pgbench_history", Some("TRUNCATE"), Some("pgbench_history")),
        ("BEGIN", "BEGIN", Some("BEGIN"), None),
        ("START TRANSACTION READ ONLY", "START TRANSACTION", Some("START TRANSACTION"), None),
        ("COMMIT", "COMMIT", Some("COMMIT"), None),
        ("SET search_path TO app", "SET", Some("SET"), None),
        ("SHOW server_version", "SHOW", Some("SHOW"), None),
        ("COPY items FROM STDIN WITH (FORMAT csv)", "COPY items", Some("COPY"), Some("items")),
        ("COPY (SELECT * FROM items) TO STDOUT", "COPY SELECT items", Some("COPY"), Some("items")),
        ("CALL refresh_stats(1)", "CALL refresh_stats", Some("CALL"), Some("refresh_stats")),
        ("SELECT EXTRACT(YEAR FROM created) FROM events", "SELECT events", Some("SELECT"), Some("events")),
        ("SELECT * FROM generate_series(1, 10) g", "SELECT", Some("SELECT"), None),
        ("SELECT a FROM x LEFT OUTER JOIN y USING (id) JOIN z ON true", "SELECT x y z", Some("SELECT"), None),
        (
            "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent",
            "SELECT orders SELECT recent",
            Some("SELECT"),
            None,
        ),
        ("EXPLAIN ANALYZE SELECT * FROM t", "EXPLAIN SELECT t", Some("EXPLAIN"), Some("t")),
        ("SELECT 1; SELECT 2 FROM t", "SELECT SELECT t", None, None),
        ("SELECT REPLACE(name, 'a', 'b') FROM t", "SELECT t", Some("SELECT"), Some("t")),
        ("REPLACE INTO t VALUES (1)", "REPLACE t", Some("REPLACE"), Some("t")),
        ("USE shop", "USE shop", Some("USE"), Some("shop")),
        ("SELECT 1", "SELECT", Some("SELECT"), None),
        ("SELECT * FROM t1 WHERE a IS DISTINCT FROM b", "SELECT t1", Some("SELECT"), Some("t1")),
        (
            "MERGE INTO target t USING source s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v",
            "MERGE target source",
            Some("MERGE"),
            None,
        ),
        ("hello world", "", None, None),
        ("", "", None, None),
    ];
    for (sql, text, op, coll) in cases {
        let got = summary(sql, PG);
        assert_eq!(got, (text.to_string(), op.map(str::to_string), coll.map(str::to_string)), "{sql:?}");
    }
}

#[test]
fn summary_is_bounded_at_a_part_boundary() {
    let tables: Vec<String> = (0..100).map(|i| format!("table_number_{i:03}")).collect();
    let sql = format!("SELECT * FROM {}", tables.join(", "));
    let s = summarize(sql.as_bytes(), PG);
    assert!(s.text.len() <= MAX_SUMMARY_BYTES, "{}", s.text.len());
    assert!(s.text.ends_with(|c: char| c.is_ascii_digit()), "{}", s.text);
    assert!(s.text.split(' ').skip(1).all(|p| p.len() == "table_number_000".len()), "{}", s.text);
    assert_eq!(s.collection, None);
}

#[test]
fn cut_text_drops_its_cut_last_word() {
    let info = QueryInfo::analyze(b"SELECT * FROM use", false, PG, SqlOptions::default());
    assert_eq!(&*info.text, "SELECT * FROM");
    assert_eq!(info.summary.as_deref(), Some("SELECT"));
    assert!(info.truncated);
    let info = QueryInfo::analyze(b"SELECT * FROM users", true, PG, SqlOptions::default());
    assert_eq!(info.collection.as_deref(), Some("users"));
    assert!(!info.truncated);
}

#[test]
fn raw_text_is_opt_in() {
    let sql = b"SELECT * FROM t WHERE pw = 'hunter2'";
    let raw = QueryInfo::analyze(sql, true, PG, SqlOptions { raw_text: true });
    assert_eq!(&*raw.text, "SELECT * FROM t WHERE pw = 'hunter2'");
    let def = QueryInfo::analyze(sql, true, PG, SqlOptions::default());
    assert_eq!(&*def.text, "SELECT * FROM t WHERE pw = ?");
    assert_eq!(def.summary, raw.summary);
}
