//! Explicit-bucket histograms over integer values (nanoseconds, bytes):
//! integer bounds make bucket choice exact, a u128 sum cannot overflow.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

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
        h.reset();
        let p = h.to_point(&[10.0, 20.0, 30.0], 1.0, vec![], 1, 2);
        assert_eq!((p.count, p.min, p.max, p.bucket_counts), (0, None, None, vec![0; 4]));
    }
}
