//! PostgreSQL and MySQL/MariaDB end to end: real servers (tests/src/databases.rs,
//! started once for the suite), the clients users run (psql, psycopg, pgx,
//! the mysql CLI, PyMySQL, mysql-connector-python), the receiver's probes.
//! Each test checks the spans of the client process (CLIENT) and of the
//! server (SERVER): exact counts per name, operations, collections,
//! sanitized texts, statuses and error codes, and that no literal of the
//! statements (a password, a card number, an e-mail address) appears in any
//! exported byte with the default configuration.

use std::collections::BTreeMap;
use std::process::Command;

use integration_tests::databases::{
    mariadb, mysql_cli, pgx_client_binary, postgres, psql, python_db_client, run_db_client, DbClientRun, DB_NAME,
    DB_PASSWORD, DB_USER,
};
use integration_tests::metric_points::{describe_points, metric_points};
use integration_tests::{require_root, Receiver, SpanRec, WAIT};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// Spans every 200 ms, metrics too (their batches are checked for literals);
/// only the connections to the database server on `port`, so that other
/// traffic on the host cannot fill the ring buffers under the test.
fn config(port: u16) -> String {
    format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "metrics": {{"interval_ms": 200}}, "selection": {{"include": {{"ports": [{port}]}}}}}}"#
    )
}

/// Literals the statements carry; none may leave the host.
const SECRETS: &[&str] = &["pw-Sup3rSecret", "4111-1111-1111-1111", "example.org", DB_PASSWORD];

#[test]
fn postgres_and_mariadb_start_once_and_serve_the_test_user() {
    let pg = postgres();
    let url = format!("postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{}/{DB_NAME}", pg.port);
    for sslmode in ["disable", "require"] {
        let out = Command::new("psql")
            .args([
                "-qtAX",
                &format!("{url}?sslmode={sslmode}"),
                "-c",
                "SELECT current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .output()
            .expect("run psql");
        let want = if sslmode == "require" { "shop|t" } else { "shop|f" };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let my = mariadb();
    let out = Command::new("mysql")
        .args([
            "--protocol=tcp",
            "-h127.0.0.1",
            &format!("-P{}", my.port),
            &format!("-u{DB_USER}"),
            &format!("-p{DB_PASSWORD}"),
        ])
        .args(["--skip-ssl", "-N", "-e", "SELECT DATABASE()", DB_NAME])
        .output()
        .expect("run mysql");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shop", "{}", String::from_utf8_lossy(&out.stderr));
    // Started once: the same servers on a second call.
    assert_eq!(postgres().pid, pg.pid);
    assert_eq!(mariadb().pid, my.pid);
    eprintln!("postgres: init {:?} start {:?}; mariadb: init {:?} start {:?}", pg.init, pg.start, my.init, my.start);
}

/// The CLIENT spans of the client process and the SERVER spans the server
/// gave its connection, once `client` (client spans) and `server` server
/// spans arrived; the receiver is stopped first, so the lists are final.
fn collect(
    rx: &mut Receiver,
    run: &DbClientRun,
    port: u16,
    client: usize,
    server: usize,
) -> (Vec<SpanRec>, Vec<SpanRec>) {
    let pid = run.pid;
    let is_client = move |s: &SpanRec| s.pid() == Some(pid) && s.is_client();
    let is_server = move |s: &SpanRec| s.pid() != Some(pid) && s.is_server() && s.server_port() == Some(port);
    let what = format!("client spans of {pid} (stderr: {})", run.stderr);
    rx.wait_for(client, WAIT, &what, is_client);
    rx.wait_for(server, WAIT, "server spans", is_server);
    rx.stop();
    let sorted = |mut v: Vec<SpanRec>| {
        v.sort_by_key(|s| s.span.start_time_unix_nano);
        v
    };
    (sorted(rx.spans_where(is_client)), sorted(rx.spans_where(is_server)))
}

fn names(spans: &[SpanRec]) -> Vec<&str> {
    spans.iter().map(|s| s.span.name.as_str()).collect()
}

fn counts(spans: &[SpanRec]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for s in spans {
        *out.entry(s.span.name.as_str()).or_default() += 1;
    }
    out
}

/// (name, db.response.status_code, error.type) of the spans with status ERROR.
fn failures(spans: &[SpanRec]) -> Vec<(&str, Option<&str>, Option<&str>)> {
    spans
        .iter()
        .filter(|s| s.status() == StatusCode::Error)
        .map(|s| (s.span.name.as_str(), s.str_attr("db.response.status_code"), s.str_attr("error.type")))
        .collect()
}

fn assert_no_secret(rx: &Receiver) {
    for secret in SECRETS {
        assert!(!rx.raw_contains(secret.as_bytes()), "{secret} reached an exported batch");
    }
}

fn assert_db_span(s: &SpanRec, system: &str, namespace: &str, port: u16) {
    assert_eq!(s.str_attr("db.system.name"), Some(system), "{}", s.describe());
    assert_eq!(s.str_attr("db.namespace"), Some(namespace), "{}", s.describe());
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"), "{}", s.describe());
    assert_eq!(s.int_attr("server.port"), Some(i64::from(port)), "{}", s.describe());
    assert_eq!(s.str_attr("network.peer.address"), Some("127.0.0.1"), "{}", s.describe());
    assert!(s.duration() > std::time::Duration::ZERO, "{}", s.describe());
}

const PSQL_SCRIPT: &str = "\
CREATE TABLE k_psql (id serial PRIMARY KEY, email text, card text, note text);
INSERT INTO k_psql (email, card, note) VALUES ('alice.k@example.org', '4111-1111-1111-1111', 'pw-Sup3rSecret');
SELECT id, email FROM k_psql WHERE email = 'alice.k@example.org' AND card IN ('4111-1111-1111-1111', '5500');
UPDATE k_psql SET note = 'pw-Sup3rSecret' WHERE id = 1;
COPY k_psql (email, card) FROM STDIN;
bob.k@example.org\t4111-1111-1111-1111
\\.
COPY k_psql (email, card) TO STDOUT;
LISTEN k_psql_chan;
NOTIFY k_psql_chan, 'pw-Sup3rSecret';
SELECT * FROM k_psql_missing;
SELECT 1/0;
";

/// (span name, db.query.text) of the psql script's statements, in order.
const PSQL_SPANS: &[(&str, &str)] = &[
    ("CREATE TABLE k_psql", "CREATE TABLE k_psql (id serial PRIMARY KEY, email text, card text, note text);"),
    ("INSERT k_psql", "INSERT INTO k_psql (email, card, note) VALUES (?, ?, ?);"),
    ("SELECT k_psql", "SELECT id, email FROM k_psql WHERE email = ? AND card IN (?);"),
    ("UPDATE k_psql", "UPDATE k_psql SET note = ? WHERE id = ?;"),
    // COPY's rows and a notification's payload travel in the stream; the
    // statements after them are still found.
    ("COPY k_psql", "COPY k_psql (email, card) FROM STDIN;"),
    ("COPY k_psql", "COPY k_psql (email, card) TO STDOUT;"),
    ("LISTEN", "LISTEN k_psql_chan;"),
    ("NOTIFY", "NOTIFY k_psql_chan, ?;"),
    ("SELECT k_psql_missing", "SELECT * FROM k_psql_missing;"),
    ("SELECT", "SELECT ?/?;"),
];

#[test]
fn psql_queries_give_one_client_and_one_server_span_each_without_literals() {
    if !require_root() {
        return;
    }
    let pg = postgres();
    let mut rx = Receiver::start_with(&config(pg.port));
    let run = psql("disable", PSQL_SCRIPT);
    assert!(run.stderr.contains("k_psql_missing") && run.stderr.contains("division by zero"), "{}", run.stderr);
    let (client, server) = collect(&mut rx, &run, pg.port, PSQL_SPANS.len(), PSQL_SPANS.len());
    for spans in [&client, &server] {
        assert_eq!(names(spans), PSQL_SPANS.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        for (s, (_, text)) in spans.iter().zip(PSQL_SPANS) {
            assert_db_span(s, "postgresql", DB_NAME, pg.port);
            assert_eq!(s.str_attr("db.query.text"), Some(*text));
        }
        assert_eq!(
            failures(spans),
            [("SELECT k_psql_missing", Some("42P01"), Some("42P01")), ("SELECT", Some("22012"), Some("22012"))]
        );
        let select = &spans[2];
        assert_eq!(select.str_attr("db.operation.name"), Some("SELECT"));
        assert_eq!(select.str_attr("db.collection.name"), Some("k_psql"));
        assert_eq!(select.str_attr("db.query.summary"), Some("SELECT k_psql"));
        assert_eq!(spans[0].str_attr("db.operation.name"), Some("CREATE TABLE"));
    }
    // The client's peer is the server's port; the server's is the client's.
    assert_eq!(client[0].int_attr("network.peer.port"), Some(i64::from(pg.port)));
    assert_ne!(server[0].int_attr("network.peer.port"), Some(i64::from(pg.port)));
    // db.client.operation.duration: one point per summary and outcome, for the client only.
    let points: Vec<_> = metric_points(&rx)
        .into_iter()
        .filter(|p| p.name == "db.client.operation.duration" && p.attr("server.port") == Some(&pg.port.to_string()))
        .collect();
    let client_points: Vec<_> = points.iter().filter(|p| p.pid == Some(run.pid)).collect();
    assert_eq!(client_points.len(), points.len(), "no server-side points:\n{}", describe_points(points.iter()));
    let summaries: Vec<(Option<&str>, Option<&str>, u64)> =
        client_points.iter().map(|p| (p.attr("db.query.summary"), p.attr("error.type"), p.count)).collect();
    for want in [
        (Some("CREATE TABLE k_psql"), None, 1),
        (Some("INSERT k_psql"), None, 1),
        (Some("SELECT k_psql"), None, 1),
        (Some("SELECT k_psql_missing"), Some("42P01"), 1),
        (Some("SELECT"), Some("22012"), 1),
        (Some("COPY k_psql"), None, 2),
    ] {
        assert!(summaries.contains(&want), "{want:?} in {summaries:?}");
    }
    for p in &client_points {
        assert_eq!((p.kind, p.unit.as_str()), ("histogram", "s"), "{}", p.describe());
        assert_eq!(p.attr("db.system.name"), Some("postgresql"), "{}", p.describe());
        assert_eq!(p.attr("db.namespace"), Some(DB_NAME), "{}", p.describe());
        assert_eq!(p.attr("server.address"), Some("127.0.0.1"), "{}", p.describe());
        assert!(p.attr("db.query.text").is_none() && p.attr("network.peer.port").is_none(), "{}", p.describe());
    }
    assert_eq!(client_points.iter().map(|p| p.count).sum::<u64>(), PSQL_SPANS.len() as u64);
    assert_no_secret(&rx);
}

#[test]
fn psql_over_tls_gives_the_same_spans() {
    if !require_root() {
        return;
    }
    let pg = postgres();
    let mut rx = Receiver::start_with(&config(pg.port));
    let script = PSQL_SCRIPT.replace("k_psql", "k_tls");
    let run = psql("require", &script);
    assert!(run.stderr.contains("k_tls_missing"), "{}", run.stderr);
    let (client, server) = collect(&mut rx, &run, pg.port, PSQL_SPANS.len(), PSQL_SPANS.len());
    for spans in [&client, &server] {
        let want: Vec<String> = PSQL_SPANS.iter().map(|(n, _)| n.replace("k_psql", "k_tls")).collect();
        assert_eq!(names(spans), want);
        for (s, (_, text)) in spans.iter().zip(PSQL_SPANS) {
            assert_db_span(s, "postgresql", DB_NAME, pg.port);
            assert_eq!(s.str_attr("db.query.text"), Some(text.replace("k_psql", "k_tls").as_str()));
        }
        assert_eq!(
            failures(spans),
            [("SELECT k_tls_missing", Some("42P01"), Some("42P01")), ("SELECT", Some("22012"), Some("22012"))]
        );
    }
    assert_no_secret(&rx);
}

const PSYCOPG_SCRIPT: &str = r#"
import sys, psycopg
port, user, password, db = sys.argv[1:5]
conn = psycopg.connect(host="127.0.0.1", port=int(port), user=user, password=password, dbname=db,
                       sslmode="disable", autocommit=True)
cur = conn.cursor()
cur.execute("CREATE TABLE k_py (id serial PRIMARY KEY, email text UNIQUE, card text)")
cur.execute("INSERT INTO k_py (email, card) VALUES (%s, %s)", ("dave.k@example.org", "4111-1111-1111-1111"))
for i in range(100):
    cur.execute("SELECT count(*) FROM k_py WHERE id > %s", (i,), prepare=True)
    cur.fetchone()
try:
    cur.execute("INSERT INTO k_py (email, card) VALUES (%s, %s)", ("dave.k@example.org", "pw-Sup3rSecret"))
except psycopg.errors.UniqueViolation:
    print("unique violation")
# executemany runs in pipeline mode (five Bind/Execute, one Sync); then an
# explicit pipeline with several Syncs in flight.
cur.executemany("INSERT INTO k_py (email, card) VALUES (%s, %s)",
                [(f"u{i}.k@example.org", "4111-1111-1111-1111") for i in range(5)])
with conn.pipeline():
    cur.execute("UPDATE k_py SET card = %s WHERE email = %s", ("pw-Sup3rSecret", "u0.k@example.org"))
    cur.execute("DELETE FROM k_py WHERE email LIKE %s", ("u%.k@example.org",))
    cur.execute("SELECT email FROM k_py ORDER BY id")
    cur.fetchall()
conn.close()
"#;

#[test]
fn psycopg_prepared_statement_executed_100_times_gives_100_spans_with_its_text() {
    if !require_root() {
        return;
    }
    let pg = postgres();
    let mut rx = Receiver::start_with(&config(pg.port));
    let run = python_db_client(pg.port, PSYCOPG_SCRIPT);
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "unique violation"), "{}", run.stderr);
    let (client, server) = collect(&mut rx, &run, pg.port, 112, 112);
    for spans in [&client, &server] {
        let want = BTreeMap::from([
            ("CREATE TABLE k_py", 1),
            ("INSERT k_py", 7),
            ("PREPARE k_py", 1),
            ("SELECT k_py", 101),
            ("UPDATE k_py", 1),
            ("DELETE k_py", 1),
        ]);
        assert_eq!(counts(spans), want);
        let text = "SELECT count(*) FROM k_py WHERE id > $1";
        let executed: Vec<_> = spans
            .iter()
            .filter(|s| s.span.name == "SELECT k_py" && s.str_attr("db.query.text") == Some(text))
            .collect();
        assert_eq!(executed.len(), 100);
        assert!(executed.iter().all(|s| s.status() != StatusCode::Error));
        // The pipelined statements, each with its own text.
        for text in [
            "INSERT INTO k_py (email, card) VALUES ($1, $2)",
            "UPDATE k_py SET card = $1 WHERE email = $2",
            "DELETE FROM k_py WHERE email LIKE $1",
            "SELECT email FROM k_py ORDER BY id",
        ] {
            assert!(spans.iter().any(|s| s.str_attr("db.query.text") == Some(text)), "{text}");
        }
        let prepare = spans.iter().find(|s| s.span.name == "PREPARE k_py").unwrap();
        assert_eq!(prepare.str_attr("db.operation.name"), Some("PREPARE"));
        assert_eq!(prepare.str_attr("db.query.text"), Some(text));
        assert!(prepare.span.start_time_unix_nano < executed[0].span.start_time_unix_nano);
        assert_eq!(failures(spans), [("INSERT k_py", Some("23505"), Some("23505"))]);
        for s in spans.iter() {
            assert_db_span(s, "postgresql", DB_NAME, pg.port);
        }
    }
    assert_no_secret(&rx);
}

#[test]
fn pgx_caches_statements_and_each_execution_is_a_span() {
    if !require_root() {
        return;
    }
    let pg = postgres();
    let bin = pgx_client_binary();
    let mut rx = Receiver::start_with(&config(pg.port));
    let dsn = format!("postgres://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{}/{DB_NAME}?sslmode=disable", pg.port);
    let run = run_db_client(
        {
            let mut cmd = Command::new(bin);
            cmd.args([&dsn, "k_pgx"]);
            cmd
        },
        b"",
        "pgx-client",
    );
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "1"), "{}", run.stderr);
    let (client, server) = collect(&mut rx, &run, pg.port, 105, 105);
    for spans in [&client, &server] {
        let want = BTreeMap::from([
            ("CREATE TABLE k_pgx", 1),
            ("PREPARE k_pgx", 2),
            ("INSERT k_pgx", 1),
            ("SELECT k_pgx", 100),
            ("SELECT k_pgx_missing", 1),
        ]);
        assert_eq!(counts(spans), want);
        assert!(spans
            .iter()
            .filter(|s| s.span.name == "SELECT k_pgx")
            .all(|s| s.str_attr("db.query.text") == Some("SELECT count(*) FROM k_pgx WHERE id > $1")));
        assert_eq!(failures(spans), [("SELECT k_pgx_missing", Some("42P01"), Some("42P01"))]);
    }
    assert!(!rx.raw_contains(b"carol.pgx@example.net"));
}

const MYSQL_SCRIPT: &str = "\
CREATE TABLE k_my (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100), card VARCHAR(40), note TEXT);
INSERT INTO k_my (email, card, note) VALUES ('erin.k@example.org', '4111-1111-1111-1111', 'pw-Sup3rSecret');
SELECT id, email FROM k_my WHERE email = 'erin.k@example.org';
SELECT * FROM k_my_missing;
USE other;
SELECT DATABASE();
";

#[test]
fn mysql_cli_queries_give_mariadb_spans_without_literals() {
    if !require_root() {
        return;
    }
    let my = mariadb();
    let mut rx = Receiver::start_with(&config(my.port));
    let run = mysql_cli(MYSQL_SCRIPT);
    assert!(run.stderr.contains("k_my_missing"), "{}", run.stderr);
    // The CLI asks SELECT DATABASE() itself before `use` (COM_INIT_DB).
    let want = [
        (
            "CREATE TABLE k_my",
            DB_NAME,
            Some("CREATE TABLE k_my (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(?), card VARCHAR(?), note TEXT)"),
        ),
        ("INSERT k_my", DB_NAME, Some("INSERT INTO k_my (email, card, note) VALUES (?, ?, ?)")),
        ("SELECT k_my", DB_NAME, Some("SELECT id, email FROM k_my WHERE email = ?")),
        ("SELECT k_my_missing", DB_NAME, Some("SELECT * FROM k_my_missing")),
        ("SELECT", DB_NAME, Some("SELECT DATABASE()")),
        ("INIT_DB other", "other", None),
        ("SELECT", "other", Some("SELECT DATABASE()")),
    ];
    let (client, server) = collect(&mut rx, &run, my.port, want.len(), want.len());
    for spans in [&client, &server] {
        assert_eq!(names(spans), want.iter().map(|w| w.0).collect::<Vec<_>>());
        for (s, (_, ns, text)) in spans.iter().zip(&want) {
            assert_db_span(s, "mariadb", ns, my.port);
            assert_eq!(s.str_attr("db.query.text"), *text);
        }
        assert_eq!(failures(spans), [("SELECT k_my_missing", Some("1146"), Some("1146"))]);
        assert_eq!(spans[5].str_attr("db.operation.name"), Some("INIT_DB"));
    }
    // db.client.operation.duration: the client's calls only, by summary, namespace and outcome.
    let points: Vec<_> = metric_points(&rx)
        .into_iter()
        .filter(|p| p.name == "db.client.operation.duration" && p.attr("server.port") == Some(&my.port.to_string()))
        .collect();
    assert!(points.iter().all(|p| p.pid == Some(run.pid)), "{}", describe_points(points.iter()));
    let got: BTreeMap<PointKey, u64> = points
        .iter()
        .map(|p| {
            (
                (p.attr("db.query.summary"), p.attr("db.namespace"), p.attr("error.type"), p.attr("db.operation.name")),
                p.count,
            )
        })
        .fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n;
            m
        });
    assert_eq!(
        got,
        BTreeMap::from([
            ((Some("CREATE TABLE k_my"), Some(DB_NAME), None, Some("CREATE TABLE")), 1),
            ((Some("INSERT k_my"), Some(DB_NAME), None, Some("INSERT")), 1),
            ((Some("SELECT k_my"), Some(DB_NAME), None, Some("SELECT")), 1),
            ((Some("SELECT k_my_missing"), Some(DB_NAME), Some("1146"), Some("SELECT")), 1),
            ((Some("SELECT"), Some(DB_NAME), None, Some("SELECT")), 1),
            ((None, Some("other"), None, Some("INIT_DB")), 1),
            ((Some("SELECT"), Some("other"), None, Some("SELECT")), 1),
        ]),
        "{}",
        describe_points(points.iter())
    );
    assert!(points.iter().all(|p| p.attr("db.system.name") == Some("mariadb")));
    assert_no_secret(&rx);
}

/// (db.query.summary, db.namespace, error.type, db.operation.name) of a metric point.
type PointKey<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// `mysql --compress`: the compressed protocol is recognised after the
/// handshake and counted (`ebpf_receiver.mysql.compressed`, once per side),
/// not parsed: no span, and nothing of its statements exported.
#[test]
fn mysql_compressed_protocol_is_counted_not_parsed() {
    if !require_root() {
        return;
    }
    let my = mariadb();
    let mut rx = Receiver::start_with(&config(my.port));
    let client = integration_tests::util::which("mysql")
        .or_else(|| integration_tests::util::which("mariadb"))
        .expect("mysql client");
    let mut cmd = Command::new(client);
    cmd.args(["--protocol=tcp", "-h127.0.0.1", &format!("-P{}", my.port), &format!("-u{DB_USER}")])
        .arg(format!("-p{DB_PASSWORD}"))
        .args(["--skip-ssl", "--compress", DB_NAME]);
    let run = run_db_client(cmd, b"SELECT 'pw-Sup3rSecret', 'alice.c@example.org';\n", "mysql --compress");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("pw-Sup3rSecret"), "{}", run.stdout);
    // A cumulative sum: its latest point is the count.
    let total = |rx: &Receiver| {
        metric_points(rx)
            .iter()
            .filter(|p| p.name == "ebpf_receiver.mysql.compressed")
            .map(|p| p.sum)
            .fold(0.0, f64::max)
    };
    let deadline = std::time::Instant::now() + WAIT;
    while total(&rx) < 2.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A plain connection afterwards is parsed as usual.
    let plain = mysql_cli("SELECT 1;\n");
    let (client, server) = collect(&mut rx, &plain, my.port, 1, 1);
    assert_eq!((names(&client), names(&server)), (vec!["SELECT"], vec!["SELECT"]));
    assert_eq!(total(&rx), 2.0, "{}", describe_points(metric_points(&rx).iter()));
    assert!(rx.spans_where(|s| s.pid() == Some(run.pid)).is_empty());
    assert_no_secret(&rx);
}

const PYMYSQL_SCRIPT: &str = r#"
import sys, pymysql
port, user, password, db = sys.argv[1:5]
tls = {"ssl": {"fake_flag_to_enable_tls": True}} if len(sys.argv) > 5 else {}
conn = pymysql.connect(host="127.0.0.1", port=int(port), user=user, password=password, database=db,
                       autocommit=True, **tls)
cur = conn.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS k_pym (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) UNIQUE, card VARCHAR(40))")
cur.execute("INSERT INTO k_pym (email, card) VALUES (%s, %s)", ("frank.k@example.org", "4111-1111-1111-1111"))
try:
    cur.execute("INSERT INTO k_pym (email, card) VALUES (%s, %s)", ("frank.k@example.org", "pw-Sup3rSecret"))
except pymysql.err.IntegrityError:
    print("duplicate")
cur.execute("SELECT id FROM k_pym WHERE email = %s", ("frank.k@example.org",))
cur.execute("DELETE FROM k_pym")
conn.ping()
conn.close()
"#;

fn pymysql_run(tls: bool) {
    let my = mariadb();
    let mut rx = Receiver::start_with(&config(my.port));
    let mut cmd = Command::new(integration_tests::servers::python());
    cmd.arg("-c").arg(PYMYSQL_SCRIPT).args([&my.port.to_string(), DB_USER, DB_PASSWORD, DB_NAME]);
    if tls {
        cmd.arg("tls");
    }
    let run = run_db_client(cmd, b"", "pymysql");
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "duplicate"), "{}", run.stderr);
    // PyMySQL sets the connection's character set itself when it connects.
    let want = [
        ("SET", None),
        ("CREATE TABLE k_pym", None),
        ("INSERT k_pym", None),
        ("INSERT k_pym", Some("1062")),
        ("SELECT k_pym", None),
        ("DELETE k_pym", None),
        ("PING", None),
    ];
    let (client, server) = collect(&mut rx, &run, my.port, want.len(), want.len());
    for spans in [&client, &server] {
        let got: Vec<(&str, Option<&str>)> =
            spans.iter().map(|s| (s.span.name.as_str(), s.str_attr("error.type"))).collect();
        assert_eq!(got, want, "tls: {tls}");
        for s in spans.iter() {
            assert_db_span(s, "mariadb", DB_NAME, my.port);
        }
        assert_eq!(spans[0].str_attr("db.query.text"), Some("SET NAMES utf8mb4"));
        assert_eq!(spans[2].str_attr("db.query.text"), Some("INSERT INTO k_pym (email, card) VALUES (?, ?)"));
        assert_eq!(spans[4].str_attr("db.query.text"), Some("SELECT id FROM k_pym WHERE email = ?"));
        assert_eq!(spans[3].str_attr("db.response.status_code"), Some("1062"));
    }
    assert_no_secret(&rx);
}

#[test]
fn pymysql_client_side_parameters_are_sanitized() {
    if !require_root() {
        return;
    }
    pymysql_run(false);
}

/// Over TLS, the product (`mariadb`) still comes from the greeting, which
/// went in the clear before the SSL request.
#[test]
fn pymysql_over_tls_gives_the_same_spans() {
    if !require_root() {
        return;
    }
    pymysql_run(true);
}

const CONNECTOR_SCRIPT: &str = r#"
import sys, mysql.connector
port, user, password, db = sys.argv[1:5]
conn = mysql.connector.connect(host="127.0.0.1", port=int(port), user=user, password=password, database=db,
                               use_pure=True, autocommit=True, ssl_disabled=True)
cur = conn.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS k_mc (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) UNIQUE)")
cur.execute("INSERT INTO k_mc (email) VALUES ('grace.k@example.org')")
cur.close()
cur = conn.cursor(prepared=True)
for i in range(100):
    cur.execute("SELECT count(*) FROM k_mc WHERE id > ?", (i,))
    cur.fetchall()
try:
    cur.execute("SELEC broken FROM k_mc WHERE email = ?", ("pw-Sup3rSecret",))
except mysql.connector.errors.ProgrammingError:
    print("syntax error")
cur.close()
conn.close()
"#;

#[test]
fn mysql_connector_prepared_statement_executed_100_times_gives_100_spans_with_its_text() {
    if !require_root() {
        return;
    }
    let my = mariadb();
    let mut rx = Receiver::start_with(&config(my.port));
    let run = python_db_client(my.port, CONNECTOR_SCRIPT);
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "syntax error"), "{}", run.stderr);
    let (client, server) = collect(&mut rx, &run, my.port, 104, 104);
    for spans in [&client, &server] {
        let ours: Vec<&SpanRec> =
            spans.iter().filter(|s| s.str_attr("db.query.text").is_some_and(|t| t.contains("k_mc"))).collect();
        let mut by_name = BTreeMap::new();
        for s in &ours {
            *by_name.entry(s.span.name.as_str()).or_insert(0) += 1;
        }
        assert_eq!(
            by_name,
            BTreeMap::from([
                ("CREATE TABLE k_mc", 1),
                ("INSERT k_mc", 1),
                ("PREPARE", 1),
                ("PREPARE k_mc", 1),
                ("SELECT k_mc", 100)
            ])
        );
        let text = "SELECT count(*) FROM k_mc WHERE id > ?";
        assert!(ours
            .iter()
            .filter(|s| s.span.name == "SELECT k_mc")
            .all(|s| s.str_attr("db.query.text") == Some(text)));
        // The preparation that failed: a syntax error, its number and SQLSTATE class 42.
        assert_eq!(failures(spans), [("PREPARE", Some("1064"), Some("1064"))]);
        for s in spans.iter() {
            assert_db_span(s, "mariadb", DB_NAME, my.port);
        }
    }
    assert_no_secret(&rx);
}
