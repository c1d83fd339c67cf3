//! The database servers of the database suites start, accept the test user
//! over TCP (and TLS), and say how long they took. No probes: this checks
//! the harness (tests/src/databases.rs) the kernel tests build on.

use std::process::Command;

use integration_tests::databases::{mariadb, postgres, DB_NAME, DB_PASSWORD, DB_USER};

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
