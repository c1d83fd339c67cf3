//! One completed operation → one OTLP span, whatever its protocol: the
//! name, kind, times, attributes and status its `Operation` says.
//!
//! `write_span` encodes straight into the batch's buffer (no `Span`
//! struct, no `String` per attribute: nothing allocated per span);
//! `to_span` builds the `prost` message, for tests and the rare caller that
//! wants a struct. Both give the same bytes (tested).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use crate::clock::WallClock;
use crate::otlp::wire::{self, AttrEncoder, AttrSink};
use crate::protocol::{Attr, Operation, Value};

use super::attributes::{bool_attr, double_attr, int_attr, str_array_attr, str_attr};
use super::ids::IdGenerator;
use super::sampling::SpanHead;

/// Wall-clock start and end; an end before the start (a record cut short)
/// is the start.
fn span_times(op: &Operation<'_>, clock: &WallClock) -> (u64, u64) {
    (clock.to_unix_ns(op.start_ns), clock.to_unix_ns(op.end_ns.max(op.start_ns)))
}

/// The fields of an OTLP `Span` message for `op`, encoded into `buf` (byte
/// for byte what `prost` writes for `to_span`'s result with the same ids).
/// `scratch` holds formatted attribute values.
pub fn write_span(
    op: &Operation<'_>,
    clock: &WallClock,
    ids: &mut IdGenerator,
    buf: &mut Vec<u8>,
    scratch: &mut String,
) {
    let head = SpanHead { trace_id: ids.trace_id_bytes(), trace_state: None };
    write_span_with(op, clock, head, ids, buf, scratch);
}

/// `write_span` with the trace id sampling drew for its decision and the
/// `tracestate` it decided (the span id still comes from `ids`).
pub fn write_span_with(
    op: &Operation<'_>,
    clock: &WallClock,
    head: SpanHead<'_>,
    ids: &mut IdGenerator,
    buf: &mut Vec<u8>,
    scratch: &mut String,
) {
    // Span fields in tag order: trace_id 1, span_id 2, trace_state 3,
    // name 5, kind 6, start 7, end 8, attributes 9, status 15.
    wire::len_field(buf, 1, &head.trace_id);
    wire::len_field(buf, 2, &ids.span_id_bytes());
    if let Some(state) = head.trace_state {
        wire::str_field(buf, 3, state);
    }
    match op.name.second {
        Some(second) => {
            wire::len_prefix(buf, 5, op.name.len());
            buf.extend_from_slice(op.name.first.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(second.as_bytes());
        }
        None => wire::str_field(buf, 5, op.name.first),
    }
    wire::varint_field(buf, 6, op.kind as u64);
    let (start, end) = span_times(op, clock);
    wire::fixed64_field(buf, 7, start);
    wire::fixed64_field(buf, 8, end);
    let mut attrs = AttrEncoder::new(buf, 9, scratch);
    for a in &op.attributes {
        write_attr(&mut attrs, a);
    }
    // Status { code: ERROR } or the empty status.
    if op.failed {
        buf.extend_from_slice(&[15 << 3 | 2, 2, 3 << 3, StatusCode::Error as u8]);
    } else {
        buf.extend_from_slice(&[15 << 3 | 2, 0]);
    }
}

/// One attribute into an encoder.
#[inline]
pub fn write_attr(sink: &mut AttrEncoder<'_>, a: &Attr<'_>) {
    match a.value {
        Value::Str(s) => sink.str(a.key, s),
        Value::Int(i) => sink.int(a.key, i),
        Value::IntStr(i) => sink.str_with(a.key, |s| wire::push_i64(s, i)),
        Value::Bool(b) => sink.bool(a.key, b),
        Value::Double(d) => sink.double(a.key, d),
        Value::Ip(ip) => sink.ip(a.key, ip),
        Value::Text(t) => sink.str_with(a.key, |s| t.write(s)),
        Value::Strs(v) => wire::str_array_kv(sink.buf, sink.tag, a.key, v),
    }
}

/// `op` as a `prost` span.
pub fn to_span(op: &Operation<'_>, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    let (start, end) = span_times(op, clock);
    Span {
        trace_id: ids.trace_id(),
        span_id: ids.span_id(),
        name: op.name.to_string(),
        kind: op.kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: op.attributes.iter().map(key_value).collect(),
        status: Some(if op.failed {
            Status { code: StatusCode::Error as i32, message: String::new() }
        } else {
            Status::default()
        }),
        ..Default::default()
    }
}

/// One attribute as a `prost` `KeyValue`.
pub fn key_value(a: &Attr<'_>) -> KeyValue {
    match a.value {
        Value::Str(s) => str_attr(a.key, s),
        Value::Int(i) => int_attr(a.key, i),
        Value::IntStr(i) => str_attr(a.key, i.to_string()),
        Value::Bool(b) => bool_attr(a.key, b),
        Value::Double(d) => double_attr(a.key, d),
        Value::Ip(ip) => str_attr(a.key, ip.to_string()),
        Value::Text(t) => {
            let mut s = String::new();
            t.write(&mut s);
            str_attr(a.key, s)
        }
        Value::Strs(v) => str_array_attr(a.key, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{SpanName, TextValue};
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;

    struct Joined<'a>(&'a str, u16);

    impl TextValue for Joined<'_> {
        fn write(&self, out: &mut String) {
            out.push_str(self.0);
            out.push(':');
            wire::push_u16(out, self.1);
        }
    }

    #[test]
    fn direct_encoding_matches_prost_for_every_value_kind() {
        let clock = WallClock::from_offset_ns(1_700_000_000_000_000_000);
        let joined = Joined("h", 8080);
        let stops = vec!["END".to_string(), String::new()];
        let mut cases = Vec::new();
        for (failed, second, start, end) in
            [(false, None, 10, 20), (true, Some("orders"), 5, 1), (false, Some(""), 0, 0)]
        {
            let mut op = Operation::new(SpanName::new("SELECT", second), SpanKind::Client, start, end);
            op.failed = failed;
            op.attr("db.system.name", "postgresql");
            op.attr("server.port", 5432i64);
            op.attr("error.type", Value::IntStr(-503));
            op.attr("flag", true);
            op.attr("ratio", 0.25);
            op.attr("network.peer.address", "2001:db8::7".parse::<std::net::IpAddr>().unwrap());
            op.attr("client.address", "10.0.0.7".parse::<std::net::IpAddr>().unwrap());
            // The same address again (its text reused), then after another value.
            op.attr("network.peer.address", "10.0.0.7".parse::<std::net::IpAddr>().unwrap());
            op.attr("error.type", Value::IntStr(7));
            op.attr("network.local.address", "10.0.0.7".parse::<std::net::IpAddr>().unwrap());
            op.attr("url.full", Value::Text(&joined));
            op.attr("gen_ai.request.stop_sequences", Value::Strs(&stops));
            op.attr("empty", "");
            cases.push(op);
        }
        cases.push(Operation::new(SpanName::new("", None), SpanKind::Server, 1, 2));
        let (mut buf, mut scratch) = (Vec::new(), String::new());
        for (i, op) in cases.iter().enumerate() {
            let expected = to_span(op, &clock, &mut IdGenerator::with_seed(i as u64)).encode_to_vec();
            buf.clear();
            write_span(op, &clock, &mut IdGenerator::with_seed(i as u64), &mut buf, &mut scratch);
            assert_eq!(buf, expected, "{op:?}");
        }
        // With the trace id and trace state sampling gives.
        for (i, op) in cases.iter().enumerate() {
            let mut span = to_span(op, &clock, &mut IdGenerator::with_seed(i as u64));
            span.trace_state = "ot=th:fd71".into();
            buf.clear();
            let mut ids = IdGenerator::with_seed(i as u64);
            let head = SpanHead { trace_id: ids.trace_id_bytes(), trace_state: Some("ot=th:fd71") };
            write_span_with(op, &clock, head, &mut ids, &mut buf, &mut scratch);
            assert_eq!(buf, span.encode_to_vec(), "{op:?}");
        }
        let span = to_span(&cases[1], &clock, &mut IdGenerator::new());
        assert_eq!(span.name, "SELECT orders");
        assert_eq!(span.end_time_unix_nano, span.start_time_unix_nano, "an end before the start is the start");
    }
}
