//! The protocol-neutral description of one completed operation (a request
//! and its response, a command, a call): what span assembly and metrics
//! need, and nothing of the protocol it came from.
//!
//! A protocol builds an `Operation` from each of its records (borrowing
//! from the record: no copy, no allocation) and hands it on; `spans`
//! encodes it as an OTLP span and `metrics` records its `MetricFeed`s,
//! neither knowing the protocol.

use std::fmt;
use std::net::IpAddr;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use smallvec::SmallVec;

use crate::metrics::{Family, MAX_INSTRUMENTS};

/// Inline room for a span's attributes: an HTTP span has at most 14, an
/// LLM call adds up to 30 more (those spill to the heap, once per call).
pub const SPAN_ATTRIBUTES: usize = 16;
/// Inline room for one metric feed's attributes: a database call has up
/// to 9 (`db.client.operation.duration`'s set).
pub const FEED_ATTRIBUTES: usize = 10;

/// One completed operation, borrowed from its record.
#[derive(Debug)]
pub struct Operation<'a> {
    pub name: SpanName<'a>,
    /// SERVER when the traced process answered, CLIENT when it asked;
    /// PRODUCER/CONSUMER for messaging.
    pub kind: SpanKind,
    /// Kernel monotonic timestamps (ns) of its first and last bytes.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Failed by the conventions of its protocol: span status ERROR (the
    /// attributes say why, in `error.type`). Sampling keeps every failure.
    pub failed: bool,
    /// Span attributes, in the order they are encoded. Keys are the
    /// semantic conventions' names.
    pub attributes: SmallVec<[Attr<'a>; SPAN_ATTRIBUTES]>,
    /// The metric instruments this operation feeds.
    pub metrics: SmallVec<[MetricFeed<'a>; 2]>,
}

impl<'a> Operation<'a> {
    pub fn new(name: SpanName<'a>, kind: SpanKind, start_ns: u64, end_ns: u64) -> Self {
        Self { name, kind, start_ns, end_ns, failed: false, attributes: SmallVec::new(), metrics: SmallVec::new() }
    }

    /// An operation to fill in (`SpanKind::Unspecified`, no name, no times).
    pub fn empty() -> Self {
        Self::new(SpanName::new("", None), SpanKind::Unspecified, 0, 0)
    }

    /// Appends a span attribute.
    #[inline]
    pub fn attr(&mut self, key: &'static str, value: impl Into<Value<'a>>) {
        self.attributes.push(Attr { key, value: value.into() });
    }

    /// The value of the span attribute `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.attributes.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    /// Drops the span attribute `key` (a layer replacing what the protocol said).
    pub fn remove(&mut self, key: &str) {
        self.attributes.retain(|a| a.key != key);
    }

    /// Duration in nanoseconds (0 if the clock went backwards).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// A span name of one or two parts joined by a space, as the conventions
/// build them (`GET /users/{id}`, `SELECT orders`, `chat gpt-4o`), without
/// formatting a `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanName<'a> {
    pub first: &'a str,
    pub second: Option<&'a str>,
}

impl<'a> SpanName<'a> {
    pub fn new(first: &'a str, second: Option<&'a str>) -> Self {
        Self { first, second }
    }

    /// Bytes of the joined name.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.map_or(0, |s| 1 + s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.first)?;
        if let Some(s) = self.second {
            f.write_str(" ")?;
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// One attribute: a key of the semantic conventions and a typed value.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub key: &'static str,
    pub value: Value<'a>,
}

/// Text an attribute value writes when it is encoded, so that values
/// composed of parts (`url.full`) need no `String` of their own.
pub trait TextValue {
    fn write(&self, out: &mut String);
}

/// An attribute value, borrowed from the record it describes.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    /// An integer sent as a string (`error.type` = `"503"`), formatted
    /// only when encoded.
    IntStr(i64),
    Bool(bool),
    Double(f64),
    /// An address in its text form (`Display`'s).
    Ip(IpAddr),
    /// Text written when encoded. Span attributes only: metric attributes
    /// are scalars (`metrics` skips this kind, and debug builds panic).
    Text(&'a dyn TextValue),
    /// A string array. Span attributes only, as for `Text`.
    Strs(&'a [String]),
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::IntStr(i) => write!(f, "\"{i}\""),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Text(t) => {
                let mut s = String::new();
                t.write(&mut s);
                write!(f, "{s:?}")
            }
            Value::Strs(v) => write!(f, "{v:?}"),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value<'_> {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<IpAddr> for Value<'_> {
    fn from(ip: IpAddr) -> Self {
        Value::Ip(ip)
    }
}

/// What one operation adds to one metric family: the family's attribute
/// set (bounded cardinality: nothing per request) and a value for each of
/// its instruments, in the family's order (`None`: not recorded).
#[derive(Debug)]
pub struct MetricFeed<'a> {
    pub family: &'static Family,
    pub attributes: SmallVec<[Attr<'a>; FEED_ATTRIBUTES]>,
    /// In the instrument's unit of record: nanoseconds for durations,
    /// bytes, tokens, messages.
    pub values: [Option<u64>; MAX_INSTRUMENTS],
}

impl<'a> MetricFeed<'a> {
    pub fn new(family: &'static Family) -> Self {
        Self { family, attributes: SmallVec::new(), values: [None; MAX_INSTRUMENTS] }
    }

    #[inline]
    pub fn attr(&mut self, key: &'static str, value: impl Into<Value<'a>>) {
        self.attributes.push(Attr { key, value: value.into() });
    }

    /// Sets the value of the family's instrument `index`.
    #[inline]
    pub fn value(&mut self, index: usize, value: u64) {
        debug_assert!(index < self.family.instruments.len());
        self.values[index] = Some(value);
    }
}
