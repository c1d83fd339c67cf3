//! Explicit-bucket histograms over integer values (nanoseconds, bytes):
//! integer bounds make bucket choice exact, a u128 sum cannot overflow.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

use crate::otlp::wire;

/// A histogram's count, sum, min and max. Its counts per bucket (bounds +
/// 1 of them; bucket `i` holds values in `(bounds[i-1], bounds[i]]`, as OTLP
/// defines them) live with the other histograms' of the same series, in one
/// allocation, and are passed in.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self { count: 0, sum: 0, min: u64::MAX, max: 0 }
    }

    /// `counts`: this histogram's buckets.
    #[inline]
    pub(crate) fn record(&mut self, counts: &mut [u64], value: u64, bounds: &[u64]) {
        debug_assert_eq!(bounds.len() + 1, counts.len());
        // The first bound >= value: upper bounds are inclusive.
        let bucket = bounds.partition_point(|&b| b < value);
        counts[bucket] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Zeroes the statistics; the caller zeroes the buckets.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    /// The OTLP point, values divided by `unit` (1e9 turns ns into s): what
    /// `write_point` encodes, as a `prost` message (tests compare them; the
    /// flows build their points with it).
    pub(crate) fn to_point(
        &self,
        counts: &[u64],
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
            bucket_counts: counts.to_vec(),
            explicit_bounds: bounds.to_vec(),
            exemplars: Vec::new(),
            flags: 0,
            min: (!empty).then(|| self.min as f64 / unit),
            max: (!empty).then(|| self.max as f64 / unit),
        }
    }
}

impl Histogram {
    /// `to_point(..)` encoded straight into `buf` as `Histogram.data_points`
    /// (field 1; the bytes `prost` writes for it); `attributes` are
    /// already encoded as `HistogramDataPoint.attributes` (field 9);
    /// `times`: start and time of the point.
    pub(super) fn write_point(
        &self,
        counts: &[u64],
        buf: &mut Vec<u8>,
        bounds: &[f64],
        unit: f64,
        attributes: &[u8],
        (start_time_unix_nano, time_unix_nano): (u64, u64),
    ) {
        let empty = self.count == 0;
        let fixed = |v: u64| if v != 0 { 9 } else { 0 };
        let packed = |n: usize| if n > 0 { wire::len_field_len(6, 8 * n) } else { 0 };
        let len = fixed(start_time_unix_nano)
            + fixed(time_unix_nano)
            + fixed(self.count)
            + 9
            + packed(counts.len())
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
        wire::len_prefix(buf, 6, 8 * counts.len());
        for c in counts {
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
    fn upper_bounds_are_inclusive() {
        let mut h = Histogram::new();
        let mut counts = [0u64; 4];
        for v in [0, 10, 11, 20, 21, 30, 31, 1000] {
            h.record(&mut counts, v, &[10, 20, 30]);
        }
        assert_eq!(counts, [2, 2, 2, 2]);
        assert_eq!((h.count, h.sum, h.min, h.max), (8, 1123, 0, 1000));
        let p = h.to_point(&counts, &[10.0, 20.0, 30.0], 1.0, vec![], 1, 2);
        assert_eq!((p.min, p.max, p.sum), (Some(0.0), Some(1000.0), Some(1123.0)));
        // The direct encoding is prost's, with and without data, attributes, times.
        let attrs = vec![crate::spans::str_attr("k", "v"), crate::spans::int_attr("n", 7)];
        let mut encoded_attrs = Vec::new();
        for kv in &attrs {
            prost::encoding::message::encode(9, kv, &mut encoded_attrs);
        }
        for (h, counts, start, now, unit) in
            [(h.clone(), counts, 1, 2, 1.0), (Histogram::new(), [0; 4], 0, 5, 1e9), (h.clone(), counts, 0, 0, 1e9)]
        {
            for with_attrs in [false, true] {
                let (a, e) = if with_attrs { (attrs.clone(), &encoded_attrs[..]) } else { (vec![], &[][..]) };
                let mut expected = Vec::new();
                prost::encoding::message::encode(
                    1,
                    &h.to_point(&counts, &[10.0, 20.0, 30.0], unit, a, start, now),
                    &mut expected,
                );
                let mut got = Vec::new();
                h.write_point(&counts, &mut got, &[10.0, 20.0, 30.0], unit, e, (start, now));
                assert_eq!(got, expected);
            }
        }
        h.reset();
        counts.fill(0);
        let p = h.to_point(&counts, &[10.0, 20.0, 30.0], 1.0, vec![], 1, 2);
        assert_eq!((p.count, p.min, p.max, p.bucket_counts), (0, None, None, vec![0; 4]));
    }
}
