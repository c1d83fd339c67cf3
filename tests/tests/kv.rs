//! The key/value suites' servers and clients (tests/src/kv.rs): each server
//! starts once per test process and answers the clients a user would use.
//! The receiver's Redis and memcached spans are checked against these.

use integration_tests::kv::{self, REDIS_PASSWORD, REDIS_USER};

#[test]
fn redis_starts_once_and_answers_its_clients() {
    let server = kv::redis();
    assert!(std::ptr::eq(server, kv::redis()), "one server per test process");
    eprintln!("redis-server started in {:?}", server.start);
    let cli = kv::redis_cli(server.port, &[], Some(b"PING\nSET kv:smoke 42\nINCR kv:smoke\n"));
    assert_eq!(cli.stdout.split_whitespace().collect::<Vec<_>>(), ["PONG", "OK", "43"]);
    let script = r#"
import sys, redis
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), protocol=3, username=sys.argv[2], password=sys.argv[3])
p = r.pipeline(transaction=True)
p.set('kv:py', 'a').append('kv:py', 'b').get('kv:py')
print(p.execute()[-1].decode())
"#;
    let py = kv::python_client(script, &[server.port.to_string(), REDIS_USER.into(), REDIS_PASSWORD.into()]);
    assert_eq!(py.stdout.trim(), "ab");
}

#[test]
fn memcached_starts_once_and_answers_its_clients() {
    let server = kv::memcached();
    assert!(std::ptr::eq(server, kv::memcached()), "one server per test process");
    eprintln!("memcached started in {:?}", server.start);
    let script = r#"
import sys
from pymemcache.client.base import Client
c = Client(('127.0.0.1', int(sys.argv[1])))
c.set('kv:a', '1')
c.set('kv:b', '2', noreply=False)
print(sorted(c.get_many(['kv:a', 'kv:b', 'kv:missing']).keys()))
"#;
    let py = kv::python_client(script, &[server.port.to_string()]);
    assert_eq!(py.stdout.trim(), "['kv:a', 'kv:b']");
}
