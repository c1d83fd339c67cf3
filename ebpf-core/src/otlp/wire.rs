//! Protobuf wire format written straight into a byte buffer, for the hot
//! paths (one span per exchange): no `prost` message structs, no `String`
//! per attribute. What is written is byte for byte what `prost` writes for
//! the same message (fields in tag order, proto3 defaults left out, `oneof`
//! and `optional` members written whenever set); the tests check it against
//! `prost`.

use std::fmt::Write as _;
use std::net::IpAddr;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use prost::encoding::{encode_varint, encoded_len_varint};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

#[inline]
fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: u32) {
    let k = (tag << 3) | wire_type;
    if k < 0x80 {
        buf.push(k as u8);
    } else {
        encode_varint(u64::from(k), buf);
    }
}

#[inline]
fn varint(buf: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
    } else {
        encode_varint(v, buf);
    }
}

/// Bytes of a field's key (tag and wire type).
#[inline]
pub fn key_len(tag: u32) -> usize {
    encoded_len_varint(u64::from(tag << 3))
}

/// Bytes of a length-delimited field holding `len` bytes.
#[inline]
pub fn len_field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// The key and length of a length-delimited field whose `len` bytes follow.
#[inline]
pub fn len_prefix(buf: &mut Vec<u8>, tag: u32, len: usize) {
    put_key(buf, tag, LEN);
    varint(buf, len as u64);
}

/// A `bytes`/`string`/message field, written even when empty (a set
/// `oneof` member or `optional` message).
#[inline]
pub fn len_field(buf: &mut Vec<u8>, tag: u32, data: &[u8]) {
    len_prefix(buf, tag, data.len());
    buf.extend_from_slice(data);
}

/// A proto3 `string`/`bytes` field: left out when empty.
#[inline]
pub fn str_field(buf: &mut Vec<u8>, tag: u32, s: &str) {
    if !s.is_empty() {
        len_field(buf, tag, s.as_bytes());
    }
}

/// A proto3 varint field (`uint32`, `uint64`, `int64`, `enum`, `bool`): left out when 0.
#[inline]
pub fn varint_field(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_key(buf, tag, VARINT);
        varint(buf, v);
    }
}

/// A proto3 `fixed64` field: left out when 0.
#[inline]
pub fn fixed64_field(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_key(buf, tag, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// A `double` field set in an `optional` (written even when 0).
#[inline]
pub fn double_field(buf: &mut Vec<u8>, tag: u32, v: f64) {
    put_key(buf, tag, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Where span (or data point) attributes go: OTLP `KeyValue`s as `prost`
/// structs, or their encoding straight into a buffer.
pub trait AttrSink {
    fn str(&mut self, key: &str, value: &str);
    fn int(&mut self, key: &str, value: i64);
    fn bool(&mut self, key: &str, value: bool);
    fn double(&mut self, key: &str, value: f64);
    /// A string value `build` writes (into an empty `String`).
    fn str_with(&mut self, key: &str, build: impl FnOnce(&mut String));
    /// An IP address in its text form (as `Display` writes it).
    fn ip(&mut self, key: &str, ip: IpAddr) {
        self.str_with(key, |s| write_ip(s, ip));
    }
}

/// Appends the decimal digits of `n`.
pub fn push_u16(out: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Appends the decimal digits of `n`, as `Display` writes them.
pub fn push_i64(out: &mut String, n: i64) {
    if let Ok(small) = u16::try_from(n) {
        push_u16(out, small);
    } else {
        let _ = write!(out, "{n}");
    }
}

/// Writes `ip` as `Display` does, IPv4 without the formatting machinery.
pub fn write_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

impl AttrSink for Vec<KeyValue> {
    fn str(&mut self, key: &str, value: &str) {
        self.push(crate::spans::str_attr(key, value));
    }

    fn int(&mut self, key: &str, value: i64) {
        self.push(crate::spans::int_attr(key, value));
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.push(crate::spans::bool_attr(key, value));
    }

    fn double(&mut self, key: &str, value: f64) {
        self.push(crate::spans::double_attr(key, value));
    }

    fn str_with(&mut self, key: &str, build: impl FnOnce(&mut String)) {
        let mut value = String::new();
        build(&mut value);
        self.push(crate::spans::str_attr(key, value));
    }
}

/// Encodes attributes as repeated `KeyValue` field `tag` of the message
/// being written into `buf`; `scratch` holds formatted values.
pub struct AttrEncoder<'a> {
    pub buf: &'a mut Vec<u8>,
    pub tag: u32,
    /// Formatted values; private: `ip_in_scratch` says what it holds.
    scratch: &'a mut String,
    /// The address whose text `scratch` holds: `client.address` and
    /// `network.peer.address` name the same peer one after the other, and
    /// it is formatted once.
    ip_in_scratch: Option<IpAddr>,
}

impl<'a> AttrEncoder<'a> {
    pub fn new(buf: &'a mut Vec<u8>, tag: u32, scratch: &'a mut String) -> Self {
        Self { buf, tag, scratch, ip_in_scratch: None }
    }
}

/// Appends to a `Vec<u8>` whose room was reserved beforehand in one step, so
/// the dozen small pieces of an attribute never reallocate. Safe pushes:
/// `unsafe` stays at the aya/FFI edges (the unchecked writer it replaced saved
/// a few percent of the encoding, not worth the exception).
struct Reserved<'a> {
    buf: &'a mut Vec<u8>,
    end: usize,
}

impl<'a> Reserved<'a> {
    /// Room for exactly `n` more bytes, which must all be written before `finish`.
    #[inline(always)]
    fn new(buf: &'a mut Vec<u8>, n: usize) -> Self {
        buf.reserve(n);
        let end = buf.len() + n;
        Self { buf, end }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    fn bytes(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    #[inline(always)]
    fn finish(self) {
        debug_assert_eq!(self.buf.len(), self.end, "length computed wrong");
    }
}

/// `KeyValue { key, value: AnyValue { <field>: ... } }` as field `tag` (< 16),
/// up to the value field's content (`value_len` bytes in all, its key
/// included), which the caller writes next with `value_len` bytes reserved.
#[inline(always)]
fn kv_prefix<'a>(buf: &'a mut Vec<u8>, tag: u32, key: &str, value_len: usize) -> Reserved<'a> {
    debug_assert!(tag < 16);
    let key_part = if key.is_empty() { 0 } else { len_field_len(1, key.len()) };
    let kv_len = key_part + len_field_len(2, value_len);
    let mut w = Reserved::new(buf, 1 + encoded_len_varint(kv_len as u64) + kv_len);
    w.byte((tag << 3 | LEN) as u8);
    w.varint(kv_len as u64);
    if !key.is_empty() {
        w.byte((1 << 3 | LEN) as u8);
        w.varint(key.len() as u64);
        w.bytes(key.as_bytes());
    }
    w.byte((2 << 3 | LEN) as u8);
    w.varint(value_len as u64);
    w
}

/// `KeyValue` field `tag` whose lengths all fit one varint byte (nearly
/// every attribute): the key and the value's first bytes each in one
/// fixed-size copy, where the general path pushes byte by byte (a capacity
/// check and a length store per byte: a third of span encoding).
#[inline(always)]
fn short_kv<const N: usize>(buf: &mut Vec<u8>, tag: u32, key: &str, kv_len: usize, value_head: [u8; N]) {
    buf.reserve(2 + kv_len);
    buf.extend_from_slice(&[(tag << 3 | LEN) as u8, kv_len as u8, (1 << 3 | LEN) as u8, key.len() as u8]);
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(&value_head);
}

/// Writes a string `KeyValue` as field `tag`.
#[inline]
pub fn str_kv(buf: &mut Vec<u8>, tag: u32, key: &str, value: &str) {
    // key (2 + key) and value (2 + string field (2 + value)) under 128 bytes.
    let kv_len = key.len() + value.len() + 6;
    if kv_len < 0x80 && !key.is_empty() && tag < 16 {
        let value_len = (value.len() + 2) as u8;
        short_kv(buf, tag, key, kv_len, [(2 << 3 | LEN) as u8, value_len, (1 << 3 | LEN) as u8, value.len() as u8]);
        buf.extend_from_slice(value.as_bytes());
        return;
    }
    let mut w = kv_prefix(buf, tag, key, len_field_len(1, value.len()));
    w.byte((1 << 3 | LEN) as u8);
    w.varint(value.len() as u64);
    w.bytes(value.as_bytes());
    w.finish();
}

/// Writes an `int64` `KeyValue` as field `tag`.
#[inline]
pub fn int_kv(buf: &mut Vec<u8>, tag: u32, key: &str, value: i64) {
    let v = value as u64;
    // key (2 + key) and value (2 + int field (2)) under 128 bytes.
    let kv_len = key.len() + 6;
    if v < 0x80 && kv_len < 0x80 && !key.is_empty() && tag < 16 {
        short_kv(buf, tag, key, kv_len, [(2 << 3 | LEN) as u8, 2, (3 << 3 | VARINT) as u8, v as u8]);
        return;
    }
    // Two varint bytes: status codes, ports.
    if v < 0x4000 && kv_len + 1 < 0x80 && !key.is_empty() && tag < 16 {
        let value_head = [(2 << 3 | LEN) as u8, 3, (3 << 3 | VARINT) as u8, (v as u8) | 0x80, (v >> 7) as u8];
        short_kv(buf, tag, key, kv_len + 1, value_head);
        return;
    }
    let mut w = kv_prefix(buf, tag, key, 1 + encoded_len_varint(v));
    w.byte((3 << 3 | VARINT) as u8);
    w.varint(v);
    w.finish();
}

/// Writes a `double` `KeyValue` as field `tag`.
#[inline]
pub fn double_kv(buf: &mut Vec<u8>, tag: u32, key: &str, value: f64) {
    let mut w = kv_prefix(buf, tag, key, 9);
    w.byte((4 << 3 | FIXED64) as u8);
    w.bytes(&value.to_le_bytes());
    w.finish();
}

/// Writes a string-array `KeyValue` as field `tag`:
/// `AnyValue { array_value: ArrayValue { values: [AnyValue { string_value }] } }`.
pub fn str_array_kv(buf: &mut Vec<u8>, tag: u32, key: &str, values: &[String]) {
    let items: usize = values.iter().map(|v| len_field_len(1, len_field_len(1, v.len()))).sum();
    let mut w = kv_prefix(buf, tag, key, len_field_len(5, items));
    w.byte((5 << 3 | LEN) as u8);
    w.varint(items as u64);
    for v in values {
        w.byte((1 << 3 | LEN) as u8);
        w.varint(len_field_len(1, v.len()) as u64);
        w.byte((1 << 3 | LEN) as u8);
        w.varint(v.len() as u64);
        w.bytes(v.as_bytes());
    }
    w.finish();
}

/// Writes a `bool` `KeyValue` as field `tag`.
#[inline]
pub fn bool_kv(buf: &mut Vec<u8>, tag: u32, key: &str, value: bool) {
    let mut w = kv_prefix(buf, tag, key, 2);
    w.byte((2 << 3 | VARINT) as u8);
    w.byte(u8::from(value));
    w.finish();
}

impl AttrSink for AttrEncoder<'_> {
    #[inline]
    fn str(&mut self, key: &str, value: &str) {
        str_kv(self.buf, self.tag, key, value);
    }

    #[inline]
    fn int(&mut self, key: &str, value: i64) {
        int_kv(self.buf, self.tag, key, value);
    }

    #[inline]
    fn bool(&mut self, key: &str, value: bool) {
        bool_kv(self.buf, self.tag, key, value);
    }

    #[inline]
    fn double(&mut self, key: &str, value: f64) {
        double_kv(self.buf, self.tag, key, value);
    }

    #[inline]
    fn str_with(&mut self, key: &str, build: impl FnOnce(&mut String)) {
        self.scratch.clear();
        self.ip_in_scratch = None;
        build(self.scratch);
        str_kv(self.buf, self.tag, key, self.scratch);
    }

    #[inline]
    fn ip(&mut self, key: &str, ip: IpAddr) {
        if self.ip_in_scratch != Some(ip) {
            self.str_with(key, |s| write_ip(s, ip));
            self.ip_in_scratch = Some(ip);
        } else {
            str_kv(self.buf, self.tag, key, self.scratch);
        }
    }
}

/// Any `KeyValue` (the rare kinds included), through `prost`, as field `tag`.
pub fn any_kv(buf: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    use prost::Message;
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => str_kv(buf, tag, &kv.key, s),
        Some(Value::IntValue(i)) => int_kv(buf, tag, &kv.key, *i),
        _ => {
            len_prefix(buf, tag, kv.encoded_len());
            kv.encode_raw(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    #[test]
    fn key_values_match_prost() {
        let cases = [
            crate::spans::str_attr("url.path", "/users/42"),
            crate::spans::str_attr("empty", ""),
            crate::spans::str_attr("", "v"),
            crate::spans::str_attr("long", "x".repeat(300)),
            crate::spans::int_attr("port", 8080),
            crate::spans::int_attr("zero", 0),
            crate::spans::int_attr("negative", -5),
            crate::spans::bool_attr("flag", true),
            crate::spans::bool_attr("flag", false),
            crate::spans::double_attr("d", 1.5),
            KeyValue { key: "none".into(), value: None, ..Default::default() },
            KeyValue { key: "unset".into(), value: Some(AnyValue { value: None }), ..Default::default() },
        ];
        // Around the one-byte-length fast paths' edges.
        let mut cases = cases.to_vec();
        for n in [0, 1, 60, 61, 62, 120, 121, 122, 123, 127, 128] {
            cases.push(crate::spans::str_attr(&"k".repeat(n.max(1)), "v".repeat(121 - n.min(121))));
            cases.push(crate::spans::str_attr("k", "v".repeat(n)));
            cases.push(crate::spans::int_attr(&"k".repeat(n.max(1)), 200));
            cases.push(crate::spans::int_attr(&"k".repeat(n.max(1)), 5));
        }
        for v in [127, 128, 16_383, 16_384] {
            cases.push(crate::spans::int_attr("n", v));
        }
        for kv in &cases {
            // As repeated field 9 of a parent message.
            let mut expected = Vec::new();
            prost::encoding::message::encode(9, kv, &mut expected);
            let mut got = Vec::new();
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::BoolValue(b)) => bool_kv(&mut got, 9, &kv.key, *b),
                Some(Value::DoubleValue(d)) => double_kv(&mut got, 9, &kv.key, *d),
                _ => any_kv(&mut got, 9, kv),
            }
            assert_eq!(got, expected, "{kv:?}");
        }
        let mut sink = Vec::new();
        let mut scratch = String::new();
        let mut enc = AttrEncoder::new(&mut sink, 9, &mut scratch);
        enc.str_with("a", |s| {
            s.push_str("h:");
            push_u16(s, 1);
        });
        let mut expected = Vec::new();
        prost::encoding::message::encode(9, &crate::spans::str_attr("a", "h:1"), &mut expected);
        assert_eq!(sink, expected);
    }

    #[test]
    fn numbers_match_display() {
        for n in [0u16, 7, 10, 99, 100, 443, 8080, 65535] {
            let mut s = String::from("x");
            push_u16(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
        for n in [0i64, 503, 65535, 65536, -1, i64::MIN, i64::MAX] {
            let mut s = String::from("x");
            push_i64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn string_arrays_match_prost() {
        for values in [vec![], vec!["stop".to_string()], vec!["a".into(), String::new(), "x".repeat(200)]] {
            let mut expected = Vec::new();
            prost::encoding::message::encode(9, &crate::spans::str_array_attr("k", &values), &mut expected);
            let mut got = Vec::new();
            str_array_kv(&mut got, 9, "k", &values);
            assert_eq!(got, expected, "{values:?}");
        }
        for d in [0.0, -1.5, 1e300] {
            let mut expected = Vec::new();
            prost::encoding::message::encode(9, &crate::spans::double_attr("d", d), &mut expected);
            let mut got = Vec::new();
            double_kv(&mut got, 9, "d", d);
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn ip_text_matches_display() {
        let mut s = String::new();
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "1.100.99.200", "::1", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().unwrap();
            s.clear();
            write_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
        for n in 0..=255u8 {
            s.clear();
            let ip = IpAddr::from([n, n / 3, n / 10, 255 - n]);
            write_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    #[test]
    fn scalars_match_prost() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut expected = Vec::new();
            prost::encoding::uint64::encode(4, &v, &mut expected);
            let mut got = Vec::new();
            varint_field(&mut got, 4, v);
            if v != 0 {
                assert_eq!(got, expected);
            } else {
                assert!(got.is_empty());
            }
            let mut expected = Vec::new();
            prost::encoding::fixed64::encode(7, &v, &mut expected);
            let mut got = Vec::new();
            fixed64_field(&mut got, 7, v);
            if v != 0 {
                assert_eq!(got, expected);
            }
        }
        // Tags past 15 need two key bytes.
        let mut expected = Vec::new();
        prost::encoding::string::encode(16, &"x".to_string(), &mut expected);
        let mut got = Vec::new();
        str_field(&mut got, 16, "x");
        assert_eq!(got, expected);
    }
}
