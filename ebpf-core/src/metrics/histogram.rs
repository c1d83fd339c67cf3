//! Explicit-bucket histograms over integer values (nanoseconds, bytes):
//! integer bounds make bucket choice exact, a u128 sum cannot overflow.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

use crate::otlp::wire;

/// `http.*.request.duration` bounds in seconds, as the HTTP semantic conventions advise.
pub const DURATION_BOUNDS_S: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The same bounds in nanoseconds, for exact integer comparison.
pub(super) const DURATION_BOUNDS_NS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// `http.*.body.size` bounds in bytes: 0 (no body) on its own, then 64 B
/// and every power of 4 up to 256 MiB. Each bucket spans a factor of 4, so
/// one histogram resolves small JSON payloads (64 B–4 KiB) as well as
/// downloads (1–256 MiB) in 14 buckets.
pub const BODY_SIZE_BOUNDS: [u64; 13] =
    [0, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20];

pub(super) const DURATION_BUCKETS: usize = DURATION_BOUNDS_NS.len() + 1;
pub(super) const BODY_SIZE_BUCKETS: usize = BODY_SIZE_BOUNDS.len() + 1;

/// Counts per bucket `N` (= bounds + 1); bucket `i` holds values in
/// `(bounds[i-1], bounds[i]]`, as OTLP defines them.
#[derive(Debug, Clone)]
pub(super) struct Histogram<const N: usize> {
    counts: [u64; N],
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl<const N: usize> Histogram<N> {
    pub(super) fn new() -> Self {
        Self { counts: [0; N], count: 0, sum: 0, min: u64::MAX, max: 0 }
    }

    #[inline]
    pub(super) fn record(&mut self, value: u64, bounds: &[u64]) {
        debug_assert_eq!(bounds.len() + 1, N);
        // The first bound >= value: upper bounds are inclusive.
        let bucket = bounds.partition_point(|&b| b < value);
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn reset(&mut self) {
        *self = Self::new();
    }

    /// The OTLP point, values divided by `unit` (1e9 turns ns into s).
    pub(super) fn to_point(
        &self,
        bounds: &[f64],
        unit: f64,
        attributes: Vec<KeyValue>,
        start_time_unix_nano: u64,
        time_unix_nano: u64,
    ) -> HistogramDataPoint {
        let empty = self.count == 0;
        HistogramDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano,
            count: self.count,
            sum: Some(self.sum as f64 / unit),
            bucket_counts: self.counts.to_vec(),
            explicit_bounds: bounds.to_vec(),
            exemplars: Vec::new(),
            flags: 0,
            min: (!empty).then(|| self.min as f64 / unit),
            max: (!empty).then(|| self.max as f64 / unit),
        }
    }
}

impl<const N: usize> Histogram<N> {
    /// `to_point(..)` encoded straight into `buf` as `Histogram.data_points`
    /// (field 1; the bytes `prost` writes for it); `attributes` are
    /// already encoded as `HistogramDataPoint.attributes` (field 9).
    pub(super) fn write_point(
        &self,
        buf: &mut Vec<u8>,
        bounds: &[f64],
        unit: f64,
        attributes: &[u8],
        start_time_unix_nano: u64,
        time_unix_nano: u64,
    ) {
        let empty = self.count == 0;
        let fixed = |v: u64| if v != 0 { 9 } else { 0 };
        let packed = |n: usize| if n > 0 { wire::len_field_len(6, 8 * n) } else { 0 };
        let len = fixed(start_time_unix_nano)
            + fixed(time_unix_nano)
            + fixed(self.count)
            + 9
            + packed(N)
            + packed(bounds.len())
            + attributes.len()
            + if empty { 0 } else { 18 };
        buf.reserve(len + 4);
        wire::len_prefix(buf, 1, len);
        // Fields in tag order: start 2, time 3, count 4, sum 5, bucket_counts 6,
        // explicit_bounds 7, attributes 9, min 11, max 12.
        wire::fixed64_field(buf, 2, start_time_unix_nano);
        wire::fixed64_field(buf, 3, time_unix_nano);
        wire::fixed64_field(buf, 4, self.count);
        wire::double_field(buf, 5, self.sum as f64 / unit);
        wire::len_prefix(buf, 6, 8 * N);
        for c in &self.counts {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        if !bounds.is_empty() {
            wire::len_prefix(buf, 7, 8 * bounds.len());
            for b in bounds {
                buf.extend_from_slice(&b.to_le_bytes());
            }
        }
        buf.extend_from_slice(attributes);
        if !empty {
            wire::double_field(buf, 11, self.min as f64 / unit);
            wire::double_field(buf, 12, self.max as f64 / unit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for (ns, s) in DURATION_BOUNDS_NS.iter().zip(DURATION_BOUNDS_S) {
            assert_eq!(*ns as f64 / 1e9, s);
        }
        assert!(BODY_SIZE_BOUNDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn upper_bounds_are_inclusive() {
        let mut h = Histogram::<4>::new();
        for v in [0, 10, 11, 20, 21, 30, 31, 1000] {
            h.record(v, &[10, 20, 30]);
        }
        assert_eq!(h.counts, [2, 2, 2, 2]);
        assert_eq!((h.count, h.sum, h.min, h.max), (8, 1123, 0, 1000));
        let p = h.to_point(&[10.0, 20.0, 30.0], 1.0, vec![], 1, 2);
        assert_eq!((p.min, p.max, p.sum), (Some(0.0), Some(1000.0), Some(1123.0)));
        // The direct encoding is prost's, with and without data, attributes, times.
        let attrs = vec![crate::spans::str_attr("k", "v"), crate::spans::int_attr("n", 7)];
        let mut encoded_attrs = Vec::new();
        for kv in &attrs {
            prost::encoding::message::encode(9, kv, &mut encoded_attrs);
        }
        for (h, start, now, unit) in
            [(h.clone(), 1, 2, 1.0), (Histogram::<4>::new(), 0, 5, 1e9), (h.clone(), 0, 0, 1e9)]
        {
            for with_attrs in [false, true] {
                let (a, e) = if with_attrs { (attrs.clone(), &encoded_attrs[..]) } else { (vec![], &[][..]) };
                let mut expected = Vec::new();
                prost::encoding::message::encode(
                    1,
                    &h.to_point(&[10.0, 20.0, 30.0], unit, a, start, now),
                    &mut expected,
                );
                let mut got = Vec::new();
                h.write_point(&mut got, &[10.0, 20.0, 30.0], unit, e, start, now);
                assert_eq!(got, expected);
            }
        }
        h.reset();
        let p = h.to_point(&[10.0, 20.0, 30.0], 1.0, vec![], 1, 2);
        assert_eq!((p.count, p.min, p.max, p.bucket_counts), (0, None, None, vec![0; 4]));
    }
}
