//! Entry points shared by the fuzz targets (`fuzz/`) and the regression test
//! that replays every input the fuzzers ever crashed on
//! (`tests/fuzz_regressions.rs`), so both exercise exactly the same code.
//! Each takes arbitrary bytes and must neither panic nor grow without bound.

use std::sync::Arc;
use std::time::Instant;

use crate::clock::WallClock;
use crate::events::recording::read_records;
use crate::metrics::{Metrics, MetricsConfig};
use crate::otlp::HostInfo;
use crate::pipeline::Processor;
use crate::process::ProcessIdentity;
use crate::protocol::http1::{Http1Parser, MAX_TARGET_BYTES};
use crate::protocol::{Chunk, ConnFacts, Describer, Direction, ParserContext, Progress, Protocol, Role, PROTOCOLS};
use crate::routes::RouteMatcher;
use crate::spans::{to_span, write_span, IdGenerator};
use crate::stats::Stats;
use crate::Config;

/// The HTTP/1 parser on a chunk sequence framed as
/// `[flags][len][uncaptured][len bytes]...` (flags: bit 0 egress, bit 1
/// count `uncaptured` extra bytes as not captured, bit 7 close after).
pub fn http1_parser(data: &[u8]) {
    let mut parser = Http1Parser::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts = 0u64;
    while rest.len() >= 3 {
        let (flags, len, extra) = (rest[0], rest[1] as usize, u64::from(rest[2]));
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        ts += 1;
        let chunk = Chunk {
            ts_ns: ts,
            direction: if flags & 1 == 0 { Direction::Ingress } else { Direction::Egress },
            data: bytes,
            total_len: bytes.len() as u64 + if flags & 2 != 0 { extra } else { 0 },
        };
        let _ = parser.feed(&chunk, &mut out);
        if flags & 0x80 != 0 {
            parser.close(ts, &mut out);
            break;
        }
    }
    for ex in &out {
        assert!(ex.target.len() <= MAX_TARGET_BYTES, "target not capped");
        assert!(ex.request_start_ns <= ts && ex.response_end_ns <= ts, "timestamps out of range");
    }
}

/// The HTTP/2 parser: the first byte picks how the connection starts
/// (0: from its start, 1: joined mid-way, 2: after `Upgrade: h2c`), then
/// chunks framed as `[flags][len][uncaptured][len bytes]...` (flags: bit 0
/// egress, bit 1 count `uncaptured << 4 * (bits 2-3)` extra bytes as not
/// captured, bit 6 lost events before the chunk, bit 7 close after).
pub fn http2_parser(data: &[u8]) {
    use crate::protocol::http2::{H2cUpgrade, Http2Parser, MAX_OPEN_STREAMS, MAX_PATH_BYTES};
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let mut parser = match mode % 3 {
        0 => Http2Parser::new(),
        1 => Http2Parser::midway(),
        _ => Http2Parser::after_upgrade(H2cUpgrade {
            request_direction: Direction::Ingress,
            method: "GET".into(),
            path: "/".into(),
            authority: None,
            request_start_ns: 0,
            request_end_ns: 0,
            request_body_size: 0,
        }),
    };
    let mut out = Vec::new();
    let mut ts = 0u64;
    while rest.len() >= 3 {
        let (flags, len, extra) = (rest[0], rest[1] as usize, u64::from(rest[2]));
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        ts += 1;
        if flags & 0x40 != 0 {
            parser.gap();
        }
        let uncaptured = if flags & 2 != 0 { extra << (4 * ((flags >> 2) & 3)) } else { 0 };
        let chunk = Chunk {
            ts_ns: ts,
            direction: if flags & 1 == 0 { Direction::Ingress } else { Direction::Egress },
            data: bytes,
            total_len: bytes.len() as u64 + uncaptured,
        };
        let _ = parser.feed(&chunk, &mut out);
        assert!(parser.open_streams() <= MAX_OPEN_STREAMS, "streams not bounded");
        if flags & 0x80 != 0 {
            parser.close(ts, &mut out);
            break;
        }
    }
    for s in &out {
        let path = s.path.as_deref().unwrap_or("");
        assert!(path.len() <= MAX_PATH_BYTES && !path.contains('?'), "path not cut or query kept");
        assert!(s.authority.as_ref().is_none_or(|a| a.len() <= 256), "authority not capped");
        assert!(s.request_start_ns <= ts && s.response_end_ns <= ts, "timestamps out of range");
    }
}

/// Every registered protocol's parser (`PROTOCOLS`), and the description
/// of what it reports: `data[0]` picks the protocol (its index, modulo how
/// many there are: append new protocols, so corpora keep their meaning),
/// the rest is as for `protocol_parser`.
pub fn protocols(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    run_parser(&PROTOCOLS[usize::from(pick) % PROTOCOLS.len()], rest);
}

/// One protocol's parser, by its registry name: for a fuzz target of its
/// own (`fuzz_target!(|data| ebpf_core::fuzzing::protocol_parser("http1", data))`).
pub fn protocol_parser(name: &str, data: &[u8]) {
    let protocol = PROTOCOLS.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no protocol {name}"));
    run_parser(protocol, data);
}

/// `data[0]`: the role the kernel saw (0 unknown, 1 server, 2 client); then
/// chunks framed `[flags][len][uncaptured][len bytes]...` (flags: bit 0
/// egress, bit 1 count `uncaptured` extra bytes as not captured, bit 2
/// events lost before this chunk, bit 7 close after). Every record is
/// described, its span encoded both ways (they must agree) and its metrics
/// recorded and exported.
fn run_parser(protocol: &Protocol, data: &[u8]) {
    let Some((&role, mut rest)) = data.split_first() else { return };
    let role = match role % 3 {
        1 => Some(Role::Server),
        2 => Some(Role::Client),
        _ => None,
    };
    let shared = protocol.shared.map(|make| make());
    let mut parser = (protocol.new_parser)(&ParserContext { role, shared, ..ParserContext::default() });
    let mut records = Vec::new();
    let mut ts = 0u64;
    while rest.len() >= 3 {
        let (flags, len, extra) = (rest[0], rest[1] as usize, u64::from(rest[2]));
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        ts += 1;
        if flags & 4 != 0 {
            parser.gap(&mut records);
        }
        let chunk = Chunk {
            ts_ns: ts,
            direction: if flags & 1 == 0 { Direction::Ingress } else { Direction::Egress },
            data: bytes,
            total_len: bytes.len() as u64 + if flags & 2 != 0 { extra } else { 0 },
        };
        match parser.feed(&chunk, &mut records) {
            Progress::Continue => {}
            // An upgrade to a registered protocol goes on with its parser,
            // as the connection tracker does.
            Progress::Done => {
                let next = |name: &str| {
                    PROTOCOLS.iter().any(|p| p.name == name).then(|| ParserContext { role, ..ParserContext::default() })
                };
                let Some(h) = parser.handover(&next, &mut records) else { break };
                parser = h.parser;
                let offset = h.offset.min(chunk.data.len());
                let rest = Chunk {
                    data: &chunk.data[offset..],
                    total_len: chunk.total_len.saturating_sub(offset as u64),
                    ..chunk
                };
                if parser.feed(&rest, &mut records) != Progress::Continue {
                    break;
                }
            }
            Progress::Failed => break,
        }
        if flags & 0x80 != 0 {
            parser.close(ts, &mut records);
            break;
        }
    }
    thread_local! {
        // Built once: the GenAI catalog takes milliseconds to compile.
        static DESCRIBER: std::cell::RefCell<Describer> =
            std::cell::RefCell::new(Describer::new(&Config::default(), Arc::new(Stats::default())));
    }
    let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
    let process = Arc::new(ProcessIdentity::from_comm(1, "fuzz"));
    let facts = ConnFacts::default();
    let clock = WallClock::from_offset_ns(0);
    let (mut buf, mut scratch) = (Vec::new(), String::new());
    DESCRIBER.with_borrow_mut(|describer| {
        for record in &records {
            describer.describe(record, &facts, &mut |op| {
                assert!(op.start_ns <= ts && op.end_ns <= ts, "timestamps out of range: {op:?}");
                buf.clear();
                write_span(op, &clock, &mut IdGenerator::with_seed(1), &mut buf, &mut scratch);
                let expected = prost::Message::encode_to_vec(&to_span(op, &clock, &mut IdGenerator::with_seed(1)));
                assert!(buf == expected, "direct span encoding differs from prost's: {op:?}");
                metrics.observe(&process, op);
            });
        }
    });
    if let Some(batch) = metrics.collect(1, &HostInfo::default(), None) {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        let decoded = <ExportMetricsServiceRequest as prost::Message>::decode(batch.data.as_slice());
        assert!(decoded.is_ok_and(|d| prost::Message::encode_to_vec(&d) == batch.data), "metrics not prost's encoding");
    }
}

/// Raw bytes as a request head and as a response head: the fast path must
/// agree with httparse on every input (see `protocol/http1/fast_head.rs`).
pub fn http1_head(data: &[u8]) {
    assert!(crate::protocol::http1::head_paths_agree(data), "fast head path disagrees with httparse");
}

/// One ring-buffer record.
pub fn event_decode(data: &[u8]) {
    let _ = crate::events::decode(data);
}

/// The whole userspace pipeline on a recording.
pub fn pipeline(data: &[u8]) {
    let mut p = Processor::replay(&Config::default(), Arc::new(Stats::default()));
    let now = Instant::now();
    for record in read_records(data) {
        p.handle(record, now, &mut |_| {});
    }
    p.flush(&mut |_| {});
}

/// Configuration JSON.
pub fn config_json(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Config::from_json(s);
    }
}

/// Route patterns (first line, space-separated) and a path (the rest).
pub fn routes(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (patterns, path) = s.split_once('\n').unwrap_or(("", s));
    let patterns: Vec<String> = patterns.split(' ').filter(|p| !p.is_empty()).map(String::from).collect();
    if let Ok(m) = RouteMatcher::new(&patterns, true) {
        let _ = m.route(path);
    }
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every entry point by name, for the regression test.
pub const TARGETS: &[(&str, Target)] = &[
    ("protocols", protocols),
    ("http1_parser", http1_parser),
    ("http1_head", http1_head),
    ("http2_parser", http2_parser),
    ("event_decode", event_decode),
    ("pipeline", pipeline),
    ("config_json", config_json),
    ("routes", routes),
    ("postgres_parser", postgres_parser),
    ("mysql_parser", mysql_parser),
    ("sql_text", sql_text),
    ("kafka_parser", kafka_parser),
    ("mongodb_parser", mongodb_parser),
    ("mqtt_parser", mqtt_parser),
    ("redis_parser", redis_parser),
    ("memcached_parser", memcached_parser),
];

/// Chunks framed as for `http1_parser` (flags bit 2: events were lost
/// before this chunk), fed to a database parser through `feed`, `gap`, `close`.
fn db_chunks(data: &[u8], mut feed: impl FnMut(Option<&Chunk<'_>>, bool)) -> u64 {
    let mut rest = data;
    let mut ts = 0u64;
    while rest.len() >= 3 {
        let (flags, len, extra) = (rest[0], rest[1] as usize, u64::from(rest[2]));
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        ts += 1;
        if flags & 4 != 0 {
            feed(None, false);
        }
        let chunk = Chunk {
            ts_ns: ts,
            direction: if flags & 1 == 0 { Direction::Ingress } else { Direction::Egress },
            data: bytes,
            total_len: bytes.len() as u64 + if flags & 2 != 0 { extra } else { 0 },
        };
        feed(Some(&chunk), false);
        if flags & 0x80 != 0 {
            break;
        }
    }
    feed(None, true);
    ts
}

fn check_db_ops(ops: &[crate::protocol::sql::DbOperation], ts: u64) {
    use crate::protocol::sql::{MAX_QUERY_BYTES, MAX_SUMMARY_BYTES};
    for op in ops {
        assert!(op.start_ns <= op.end_ns && op.end_ns <= ts, "timestamps out of range: {op:?}");
        if let Some(q) = &op.query {
            assert!(q.text.len() <= MAX_QUERY_BYTES * 3, "text not bounded");
            assert!(q.summary.as_ref().is_none_or(|s| s.len() <= MAX_SUMMARY_BYTES), "summary not bounded");
        }
    }
}

/// The PostgreSQL parser on a chunk sequence (see `db_chunks`).
pub fn postgres_parser(data: &[u8]) {
    use crate::protocol::postgres::PgParser;
    let mut p = PgParser::new(crate::protocol::sql::SqlOptions::default());
    let mut out = Vec::new();
    let ts = db_chunks(data, |chunk, close| match (chunk, close) {
        (Some(c), _) => p.feed(c, &mut out),
        (None, false) => p.gap(),
        (None, true) => p.close(&mut out),
    });
    check_db_ops(&out, ts);
}

/// The MySQL/MariaDB parser on a chunk sequence (see `db_chunks`).
pub fn mysql_parser(data: &[u8]) {
    use crate::protocol::mysql::MysqlParser;
    let mut p = MysqlParser::new(crate::protocol::sql::SqlOptions::default());
    let mut out = Vec::new();
    let ts = db_chunks(data, |chunk, close| match (chunk, close) {
        (Some(c), _) => p.feed(c, &mut out),
        (None, false) => p.gap(),
        (None, true) => p.close(&mut out),
    });
    check_db_ops(&out, ts);
}

/// SQL text through the sanitizer and the summary, both dialects, whole
/// and cut: bounded output, no panic, and no quote character left outside
/// what the tokenizer calls an identifier (a string never survives).
pub fn sql_text(data: &[u8]) {
    use crate::protocol::sql::{Dialect, QueryInfo, SqlOptions, MAX_SUMMARY_BYTES};
    for dialect in [Dialect::Postgres, Dialect::MySql] {
        for complete in [true, false] {
            let q = QueryInfo::analyze(data, complete, dialect, SqlOptions::default());
            assert!(q.summary.as_ref().is_none_or(|s| s.len() <= MAX_SUMMARY_BYTES));
            assert!(q.text.len() <= data.len() * 3 + 3, "sanitized text grew");
            if !data.contains(&b'"') && !data.contains(&b'`') {
                assert!(!q.text.contains('\''), "a quote survived in {:?}", q.text);
            }
        }
    }
}

/// The Kafka parser on a chunk sequence (see `db_chunks`), as if followed
/// from the connection's start and as if joined mid-stream.
pub fn kafka_parser(data: &[u8]) {
    use crate::protocol::kafka::{KafkaParser, TopicNames};
    use crate::protocol::Role;
    let names = Arc::new(TopicNames::new());
    for joined in [None, Some(Role::Client), Some(Role::Server)] {
        let mut p = match joined {
            None => KafkaParser::new(names.clone()),
            Some(role) => KafkaParser::joined(names.clone(), role),
        };
        let (mut out, mut last) = (Vec::new(), 0);
        let ts = db_chunks(data, |chunk, close| match (chunk, close) {
            (Some(c), _) => {
                last = c.ts_ns;
                p.feed(c, &mut out)
            }
            (None, false) => p.gap(),
            (None, true) => p.close(last, &mut out),
        });
        for op in &out {
            assert!(op.start_ns <= op.end_ns && op.end_ns <= ts, "timestamps out of range: {op:?}");
            assert!(op.topic.as_ref().is_none_or(|t| t.len() <= 249), "topic not bounded");
            assert!(op.client_id.as_ref().is_none_or(|t| t.len() <= 128), "client id not bounded");
        }
    }
    assert!(names.len() <= crate::protocol::kafka::MAX_TOPIC_IDS);
}

/// The MongoDB parser on a chunk sequence (see `db_chunks`).
pub fn mongodb_parser(data: &[u8]) {
    use crate::protocol::mongodb::MongoParser;
    use crate::protocol::Role;
    for joined in [None, Some(Role::Client), Some(Role::Server)] {
        let mut p = joined.map_or_else(MongoParser::new, MongoParser::joined);
        let (mut out, mut last) = (Vec::new(), 0);
        let ts = db_chunks(data, |chunk, close| match (chunk, close) {
            (Some(c), _) => {
                last = c.ts_ns;
                p.feed(c, &mut out)
            }
            (None, false) => p.gap(),
            (None, true) => p.close(last, &mut out),
        });
        for op in &out {
            assert!(op.start_ns <= op.end_ns && op.end_ns <= ts, "timestamps out of range: {op:?}");
            for name in [&op.command, &op.collection, &op.database].into_iter().flatten() {
                assert!(name.len() <= 255 && !name.contains('\0'), "name not bounded: {name:?}");
            }
        }
    }
}

/// The MQTT parser on a chunk sequence (see `db_chunks`).
pub fn mqtt_parser(data: &[u8]) {
    use crate::protocol::mqtt::{MqttParser, MAX_TOPIC_BYTES};
    use crate::protocol::Role;
    for joined in [None, Some(Role::Client), Some(Role::Server)] {
        let mut p = joined.map_or_else(MqttParser::new, MqttParser::joined);
        let (mut out, mut last) = (Vec::new(), 0);
        let ts = db_chunks(data, |chunk, close| match (chunk, close) {
            (Some(c), _) => {
                last = c.ts_ns;
                p.feed(c, &mut out)
            }
            (None, false) => p.gap(),
            (None, true) => p.close(last, &mut out),
        });
        for op in &out {
            assert!(op.start_ns <= op.end_ns && op.end_ns <= ts, "timestamps out of range: {op:?}");
            assert!(op.topic.as_ref().is_none_or(|t| t.len() <= MAX_TOPIC_BYTES), "topic not bounded");
            assert!(op.qos.is_none_or(|q| q <= 2), "QoS out of range");
        }
    }
}

/// The Redis parser on a chunk sequence (see `db_chunks`), as if joined
/// mid-stream and as if followed from the connection's start: every
/// operation's times are in range, and nothing but short names is kept.
pub fn redis_parser(data: &[u8]) {
    use crate::protocol::redis::RedisParser;
    use crate::protocol::Role;
    for start in [None, Some(Role::Client), Some(Role::Server)] {
        let mut p = start.map_or_else(RedisParser::new, |role| RedisParser::from_start(Some(role)));
        let mut out = Vec::new();
        let ts = db_chunks(data, |chunk, close| match (chunk, close) {
            (Some(c), _) => {
                let _ = p.feed(c, &mut out);
            }
            (None, false) => {
                p.gap(&mut out);
            }
            (None, true) => p.close(u64::MAX, &mut out),
        });
        for op in &out {
            assert!(op.request_start_ns <= op.request_end_ns && op.request_end_ns <= ts, "request times: {op:?}");
            assert!(op.response_start_ns.is_none_or(|t| t <= ts), "response start: {op:?}");
            assert!(op.command.as_ref().is_none_or(|c| c.len() <= 40), "name not bounded");
            assert!(op.subcommand.as_ref().is_none_or(|c| c.len() <= 32), "subcommand not bounded");
            assert!(op.error_code().is_none_or(|c| c.len() <= 24), "error code not bounded");
        }
    }
}

/// The memcached parser on a chunk sequence (see `db_chunks`), with the
/// role inferred and given.
pub fn memcached_parser(data: &[u8]) {
    use crate::protocol::memcached::MemcachedParser;
    use crate::protocol::Role;
    for role in [None, Some(Role::Client), Some(Role::Server)] {
        let mut p = MemcachedParser::with_role(role);
        let mut out = Vec::new();
        let ts = db_chunks(data, |chunk, close| match (chunk, close) {
            (Some(c), _) => {
                let _ = p.feed(c, &mut out);
            }
            (None, false) => {
                p.gap(&mut out);
            }
            (None, true) => p.close(u64::MAX, &mut out),
        });
        for op in &out {
            assert!(op.request_start_ns <= op.request_end_ns && op.request_end_ns <= ts, "request times: {op:?}");
            assert!(op.response_start_ns.is_none_or(|t| t <= ts), "response start: {op:?}");
            assert!(op.command.as_ref().is_none_or(|c| c.len() <= 16), "name not bounded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness on the model protocol: its framing, and random bytes.
    #[test]
    fn harness_runs_a_protocol_on_arbitrary_input() {
        let protocol = crate::protocol::example_protocol();
        let call = b"ECHO a\r\n";
        let answer = b"ERR 5\r\n";
        let mut framed = vec![1, 0, call.len() as u8, 0];
        framed.extend_from_slice(call);
        framed.extend_from_slice(&[5, answer.len() as u8, 0]);
        framed.extend_from_slice(answer);
        run_parser(protocol, &framed);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3000 {
            let mut data: Vec<u8> = (0..rng.usize(0..200)).map(|_| rng.u8(..)).collect();
            if rng.bool() {
                data.splice(0..0, framed.iter().copied());
            }
            run_parser(protocol, &data);
            protocols(&data);
        }
    }
}
