//! The series of one metric family in one process: an attribute set (the
//! key) and a point per instrument. A feed finds its series through its
//! borrowed attributes (no allocation); only a new series allocates (its
//! owned key and its points).

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use hashbrown::HashTable;

use crate::otlp::wire::{self, AttrSink};
use crate::protocol::{Attr, MetricFeed, Value};

use super::histogram::Histogram;
use super::instruments::{Family, Kind, MAX_INSTRUMENTS};

/// The only attribute of the series that takes what exceeds the series limit
/// (the name the OpenTelemetry metrics SDK specification gives it).
pub(super) const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// A metric attribute value, owned by its series' key; text lives in the
/// key's one string (`SeriesKey::text`).
#[derive(Debug, Clone)]
enum OwnedValue {
    /// Bytes `start..end` of the key's text.
    Str(u32, u32),
    Int(i64),
    IntStr(i64),
    Bool(bool),
    Double(f64),
    Ip(IpAddr),
}

/// Only scalar values are metric attributes (`Value::Text` and
/// `Value::Strs` are for spans); others are left out.
fn is_scalar(a: &Attr<'_>) -> bool {
    let scalar = !matches!(a.value, Value::Text(_) | Value::Strs(_));
    debug_assert!(scalar, "metric attribute {} is not a scalar", a.key);
    scalar
}

/// Hashes what tells attribute sets apart: the values, in order. Keys are
/// compared on a hit only (a protocol gives the same keys in the same order
/// for the same kind of operation), and so are the kinds of values: what
/// hashes alike is told apart by `SeriesKey::matches`.
#[inline]
fn hash_value(state: &mut impl Hasher, v: &Value<'_>) {
    match *v {
        Value::Str(s) => state.write(s.as_bytes()),
        Value::Int(i) | Value::IntStr(i) => state.write_i64(i),
        Value::Bool(b) => state.write_u8(u8::from(b)),
        Value::Double(d) => state.write_u64(d.to_bits()),
        Value::Ip(ip) => ip.hash(state),
        Value::Text(_) | Value::Strs(_) => {}
    }
}

#[inline]
fn same_value(owned: &OwnedValue, text: &str, v: &Value<'_>) -> bool {
    match (owned, v) {
        (&OwnedValue::Str(start, end), Value::Str(b)) => {
            text.as_bytes().get(start as usize..end as usize) == Some(b.as_bytes())
        }
        (OwnedValue::Int(a), Value::Int(b)) | (OwnedValue::IntStr(a), Value::IntStr(b)) => a == b,
        (OwnedValue::Bool(a), Value::Bool(b)) => a == b,
        (OwnedValue::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
        (OwnedValue::Ip(a), Value::Ip(b)) => a == b,
        _ => false,
    }
}

#[inline]
fn same_key(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// A series' attributes, in the order the feed gave them: two allocations
/// (the list, and one string holding every text value).
#[derive(Debug, Clone)]
pub(super) struct SeriesKey {
    attrs: Box<[(&'static str, OwnedValue)]>,
    text: Box<str>,
}

impl SeriesKey {
    fn of(attrs: &[Attr<'_>]) -> Self {
        let mut text =
            String::with_capacity(attrs.iter().map(|a| if let Value::Str(s) = a.value { s.len() } else { 0 }).sum());
        let mut owned = Vec::with_capacity(attrs.len());
        for a in attrs.iter().filter(|a| is_scalar(a)) {
            let value = match a.value {
                Value::Str(s) => {
                    let start = text.len() as u32;
                    text.push_str(s);
                    OwnedValue::Str(start, text.len() as u32)
                }
                Value::Int(i) => OwnedValue::Int(i),
                Value::IntStr(i) => OwnedValue::IntStr(i),
                Value::Bool(b) => OwnedValue::Bool(b),
                Value::Double(d) => OwnedValue::Double(d),
                Value::Ip(ip) => OwnedValue::Ip(ip),
                Value::Text(_) | Value::Strs(_) => continue,
            };
            owned.push((a.key, value));
        }
        Self { attrs: owned.into_boxed_slice(), text: text.into_boxed_str() }
    }

    fn value(&self, v: &OwnedValue) -> Value<'_> {
        match *v {
            OwnedValue::Str(start, end) => Value::Str(&self.text[start as usize..end as usize]),
            OwnedValue::Int(i) => Value::Int(i),
            OwnedValue::IntStr(i) => Value::IntStr(i),
            OwnedValue::Bool(b) => Value::Bool(b),
            OwnedValue::Double(d) => Value::Double(d),
            OwnedValue::Ip(ip) => Value::Ip(ip),
        }
    }

    fn matches(&self, attrs: &[Attr<'_>]) -> bool {
        let mut mine = self.attrs.iter();
        for a in attrs.iter().filter(|a| is_scalar(a)) {
            match mine.next() {
                Some((key, value)) if same_key(key, a.key) && same_value(value, &self.text, &a.value) => {}
                _ => return false,
            }
        }
        mine.next().is_none()
    }

    fn hash_with(&self, hasher: &impl BuildHasher) -> u64 {
        let mut h = hasher.build_hasher();
        for (_, v) in self.attrs.iter() {
            hash_value(&mut h, &self.value(v));
        }
        h.finish()
    }

    /// The data point attributes of an instrument: the set less what it
    /// omits, then its constant ones.
    pub(super) fn write_attributes(&self, omit: &[&str], extra: &[(&str, &str)], attrs: &mut impl AttrSink) {
        for (key, value) in self.attrs.iter().filter(|(k, _)| !omit.contains(k)) {
            match self.value(value) {
                Value::Str(s) => attrs.str(key, s),
                Value::Int(i) => attrs.int(key, i),
                Value::IntStr(i) => attrs.str_with(key, |s| wire::push_i64(s, i)),
                Value::Bool(b) => attrs.bool(key, b),
                Value::Double(d) => attrs.double(key, d),
                Value::Ip(ip) => attrs.ip(key, ip),
                Value::Text(_) | Value::Strs(_) => {}
            }
        }
        for (key, value) in extra {
            attrs.str(key, value);
        }
    }
}

#[inline]
fn hash_feed(attrs: &[Attr<'_>], hasher: &impl BuildHasher) -> u64 {
    let mut h = hasher.build_hasher();
    for a in attrs {
        hash_value(&mut h, &a.value);
    }
    h.finish()
}

/// What one instrument of one series accumulated.
#[derive(Debug, Clone, Default)]
pub(super) enum Point {
    /// No instrument at this position of the family.
    #[default]
    Unused,
    /// A histogram over `bounds`; its buckets are `Series::counts[offset..]`.
    Histogram(Histogram, u32, &'static [u64]),
    /// A monotonic sum and how many values were added to it.
    Counter { total: u64, updates: u64 },
}

impl Point {
    pub(super) fn count(&self) -> u64 {
        match self {
            Point::Unused => 0,
            Point::Histogram(h, ..) => h.count(),
            Point::Counter { updates, .. } => *updates,
        }
    }
}

/// The points of one attribute set, one per instrument of its family.
#[derive(Debug, Clone)]
pub(super) struct Series {
    /// Cumulative start time: the last collection before the series' first
    /// record (or the creation of `Metrics`).
    pub(super) start_ns: u64,
    pub(super) points: [Point; MAX_INSTRUMENTS],
    /// The buckets of every histogram of the series (one allocation).
    counts: Box<[u64]>,
}

impl Series {
    fn new(family: &Family, start_ns: u64) -> Self {
        let mut points: [Point; MAX_INSTRUMENTS] = Default::default();
        let mut buckets = 0;
        for (point, instrument) in points.iter_mut().zip(family.instruments) {
            *point = match instrument.kind {
                Kind::Histogram { bounds, .. } => {
                    let offset = buckets as u32;
                    buckets += bounds.len() + 1;
                    Point::Histogram(Histogram::new(), offset, bounds)
                }
                Kind::Counter => Point::Counter { total: 0, updates: 0 },
            };
        }
        Self { start_ns, points, counts: vec![0; buckets].into_boxed_slice() }
    }

    /// The buckets of the histogram at `offset` over `bounds`.
    pub(super) fn buckets(&self, offset: u32, bounds: &[u64]) -> &[u64] {
        &self.counts[offset as usize..offset as usize + bounds.len() + 1]
    }

    #[inline]
    fn record(&mut self, values: &[Option<u64>; MAX_INSTRUMENTS]) {
        for (point, value) in self.points.iter_mut().zip(values) {
            let Some(v) = *value else { continue };
            match point {
                Point::Histogram(h, offset, bounds) => {
                    let start = *offset as usize;
                    if let Some(counts) = self.counts.get_mut(start..start + bounds.len() + 1) {
                        h.record(counts, v, bounds);
                    }
                }
                Point::Counter { total, updates } => {
                    *total = total.saturating_add(v);
                    *updates += 1;
                }
                Point::Unused => debug_assert!(false, "a value for no instrument"),
            }
        }
    }

    /// Something was recorded since the series started or was last reset.
    pub(super) fn has_data(&self) -> bool {
        self.points.iter().any(|p| p.count() > 0)
    }

    fn reset(&mut self) {
        self.counts.fill(0);
        for p in &mut self.points {
            match p {
                Point::Unused => {}
                Point::Histogram(h, ..) => h.reset(),
                Point::Counter { total, updates } => (*total, *updates) = (0, 0),
            }
        }
    }
}

/// The series of one family of one process.
#[derive(Debug)]
pub(super) struct FamilySeries {
    pub(super) family: &'static Family,
    /// foldhash: several times cheaper than SipHash on these small keys, and
    /// seeded at random per process, as the keys hold request text (routes, Host).
    hasher: foldhash::fast::RandomState,
    pub(super) series: HashTable<(SeriesKey, Series)>,
    /// Data whose attribute set found no room (`max_series_per_metric`).
    pub(super) overflow: Option<Series>,
    /// Hash of the series last recorded into: consecutive operations mostly
    /// hit the same series, whose probe then needs no hashing.
    last_hash: u64,
}

impl FamilySeries {
    pub(super) fn new(family: &'static Family) -> Self {
        Self { family, hasher: Default::default(), series: HashTable::new(), overflow: None, last_hash: 0 }
    }

    /// Records the feed into its series, created if there is room; `false`
    /// when the limit was hit and the overflow series took it.
    #[inline]
    pub(super) fn record(&mut self, feed: &MetricFeed<'_>, max_series: usize, start_ns: u64) -> bool {
        let family = self.family;
        // Keys are unique: a key that matches where the last hash leads is
        // the feed's series, whatever the feed's own hash.
        if let Some((_, series)) = self.series.find_mut(self.last_hash, |(k, _)| k.matches(&feed.attributes)) {
            series.record(&feed.values);
            return true;
        }
        let hash = hash_feed(&feed.attributes, &self.hasher);
        self.last_hash = hash;
        if let Some((_, series)) = self.series.find_mut(hash, |(k, _)| k.matches(&feed.attributes)) {
            series.record(&feed.values);
            return true;
        }
        if self.series.len() < max_series {
            let mut series = Series::new(family, start_ns);
            series.record(&feed.values);
            let hasher = &self.hasher;
            self.series.insert_unique(hash, (SeriesKey::of(&feed.attributes), series), |(k, _)| k.hash_with(hasher));
            return true;
        }
        self.overflow.get_or_insert_with(|| Series::new(family, start_ns)).record(&feed.values);
        false
    }

    /// Series held, the overflow one included.
    pub(super) fn len(&self) -> usize {
        self.series.len() + usize::from(self.overflow.is_some())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.series.is_empty() && self.overflow.is_none()
    }

    /// Delta mode, after an export: drop series without new data, zero the others.
    pub(super) fn reset_for_delta(&mut self) {
        self.series.retain(|(_, s)| s.has_data());
        self.series.iter_mut().for_each(|(_, s)| s.reset());
        if self.overflow.as_ref().is_some_and(|s| !s.has_data()) {
            self.overflow = None;
        }
        if let Some(s) = &mut self.overflow {
            s.reset();
        }
    }

    /// Every series with data: its key (None for the overflow series) and points.
    pub(super) fn with_data(&self) -> impl Iterator<Item = (Option<&SeriesKey>, &Series)> {
        let keyed = self.series.iter().map(|(k, s)| (Some(k), s));
        keyed.chain(self.overflow.iter().map(|s| (None, s))).filter(|(_, s)| s.has_data())
    }
}

/// The overflow series' attributes (and an instrument's constant ones).
pub(super) fn write_overflow_attributes(extra: &[(&str, &str)], attrs: &mut impl AttrSink) {
    attrs.bool(OVERFLOW_ATTRIBUTE, true);
    for (key, value) in extra {
        attrs.str(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::instruments::HTTP_SERVER;

    fn feed<'a>(route: &'a str, status: i64, server: Option<IpAddr>) -> MetricFeed<'a> {
        let mut f = MetricFeed::new(&HTTP_SERVER);
        f.attr("http.request.method", "GET");
        f.attr("http.response.status_code", status);
        f.attr("http.route", route);
        if let Some(ip) = server {
            f.attr("server.address", ip);
        }
        f.value(0, 1);
        f
    }

    #[test]
    fn owned_and_borrowed_keys_agree() {
        let hasher = foldhash::fast::RandomState::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = feed("/users/{id}", 200, Some(ip));
        let key = SeriesKey::of(&a.attributes);
        assert_eq!(key.hash_with(&hasher), hash_feed(&a.attributes, &hasher));
        assert!(key.matches(&a.attributes));
        for other in [feed("/users", 200, Some(ip)), feed("/users/{id}", 404, Some(ip)), feed("/users/{id}", 200, None)]
        {
            assert!(!key.matches(&other.attributes), "{other:?}");
        }
        // Same value under another key, or a number as text: another set.
        let mut renamed = feed("/users/{id}", 200, Some(ip));
        renamed.attributes[2].key = "url.template";
        assert!(!key.matches(&renamed.attributes));
        let mut as_text = feed("/users/{id}", 200, Some(ip));
        as_text.attributes[1].value = Value::IntStr(200);
        assert!(!key.matches(&as_text.attributes));
    }

    #[test]
    fn series_are_found_again_and_the_limit_overflows() {
        let mut family = FamilySeries::new(&HTTP_SERVER);
        assert!(family.record(&feed("/a", 200, None), 2, 5));
        assert!(family.record(&feed("/a", 200, None), 2, 5));
        assert!(family.record(&feed("/b", 200, None), 2, 5));
        assert!(!family.record(&feed("/c", 200, None), 2, 5));
        assert_eq!((family.series.len(), family.len()), (2, 3));
        let counts: Vec<u64> = family.with_data().map(|(_, s)| s.points[0].count()).collect();
        assert!(family.with_data().all(|(_, s)| s.counts.len() == 15 + 14 + 14));
        assert_eq!(counts.iter().sum::<u64>(), 4);
        family.reset_for_delta();
        assert_eq!(family.len(), 3);
        family.reset_for_delta();
        assert!(family.is_empty());
    }
}
