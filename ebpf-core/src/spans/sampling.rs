//! Sampling at the source: which completed requests become spans, decided
//! once the response is seen and before anything is encoded. Metrics are
//! computed from every request before this decision.
//!
//! Failed operations (`Operation::failed`, by their protocol's conventions:
//! for HTTP a server's 5xx, a client's 4xx/5xx, a request that never got its
//! response; the spans with `error.type` and status ERROR) and operations
//! that took at least `keep_slower_than_ms` are always kept. Of the others a `ratio` is kept,
//! consistently by trace id, as OpenTelemetry's consistent probability
//! sampling defines it (W3C Trace Context level 2 random trace ids): the
//! last 7 bytes of the trace id are the randomness R, the ratio gives a
//! rejection threshold T, and a span is kept when R >= T. Every sampler
//! with the same ratio, on any node, keeps the same trace ids.
//!
//! Kept spans say how they were sampled in their W3C `tracestate`: `ot=th:T`
//! (T in hex, trailing zeros dropped) for those the ratio kept, `ot=th:0`
//! (probability 1) for those kept as failed or slow, so that a backend
//! counts each kept span as 1/probability requests. With the default ratio
//! of 1 nothing is dropped and no tracestate is written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Problems;

/// Thresholds and randomness are 56-bit numbers (14 hex digits).
const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
/// Significant hex digits of a threshold: `ot=th:fd71` for 1%, as the
/// collector's probabilistic sampler writes by default.
const PRECISION: u32 = 4;
/// The tracestate of a span kept whatever its trace id.
const ALWAYS: &str = "ot=th:0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Fraction of ordinary requests whose spans are exported, from 0 to 1,
    /// decided by the trace id's random bits (the same traces on every
    /// node). Failed and slow requests are always exported; metrics count
    /// every request. Kept spans carry their sampling probability in
    /// `tracestate` (`ot=th:...`).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ratio: f64,
    /// Requests that took at least this long are always exported, whatever
    /// the ratio; 0 turns this rule off.
    #[schemars(range(max = 86_400_000), extend("x-unit" = "ms"))]
    pub keep_slower_than_ms: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { ratio: 1.0, keep_slower_than_ms: 0 }
    }
}

impl SamplingConfig {
    /// What the schema cannot say: a ratio that is a number at all.
    pub(crate) fn check(&self, problems: &mut Problems) {
        if !self.ratio.is_finite() {
            problems.push("traces.sampling.ratio", format!("must be a number from 0 to 1, not {}", self.ratio));
        }
    }
}

/// How a kept span begins: its trace id (whose randomness the decision
/// used) and the `tracestate` that says how it was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanHead<'a> {
    pub trace_id: [u8; 16],
    pub trace_state: Option<&'a str>,
}

/// What the sampler decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Not exported (counted in `spans_sampled_out`).
    Drop,
    /// Exported, with this `tracestate` (None: sampling is off).
    Keep(Option<&'a str>),
}

/// The decision rule of a `SamplingConfig`.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// Rejection threshold: a trace id whose randomness is below it is
    /// dropped (0 keeps every span, `MAX_ADJUSTED_COUNT` none).
    threshold: u64,
    /// `ot=th:...` of the spans the ratio kept.
    ratio_state: String,
    /// Requests at least this long are kept (None: no such rule).
    slow_ns: Option<u64>,
}

impl Sampler {
    /// None when every span is kept (ratio 1): nothing to decide.
    pub fn new(config: &SamplingConfig) -> Option<Self> {
        if config.ratio >= 1.0 || config.ratio.is_nan() {
            return None;
        }
        let threshold = threshold(config.ratio.max(0.0));
        Some(Self {
            threshold,
            ratio_state: format!("ot=th:{}", th_value(threshold)),
            slow_ns: (config.keep_slower_than_ms > 0).then(|| config.keep_slower_than_ms.saturating_mul(1_000_000)),
        })
    }

    /// Keeps a failed or slow request, else keeps it when its trace id's
    /// randomness reaches the threshold.
    pub fn decide(&self, trace_id: &[u8; 16], failed: bool, duration_ns: u64) -> Decision<'_> {
        if failed || self.slow_ns.is_some_and(|slow| duration_ns >= slow) {
            return Decision::Keep(Some(ALWAYS));
        }
        if randomness(trace_id) >= self.threshold {
            Decision::Keep(Some(&self.ratio_state))
        } else {
            Decision::Drop
        }
    }

    /// The probability the ratio keeps an ordinary request with, as its
    /// threshold encodes it (the ratio, rounded to `PRECISION` hex digits).
    pub fn probability(&self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.threshold) as f64 / MAX_ADJUSTED_COUNT as f64
    }
}

/// The randomness of a trace id: its last 7 bytes, big-endian.
fn randomness(trace_id: &[u8; 16]) -> u64 {
    let mut b = [0u8; 8];
    b[1..].copy_from_slice(&trace_id[9..]);
    u64::from_be_bytes(b)
}

/// The rejection threshold of probability `p` (0 <= p < 1), rounded to
/// `PRECISION` significant hex digits (leading zero digits do not count).
fn threshold(p: f64) -> u64 {
    let kept = (p * MAX_ADJUSTED_COUNT as f64).round() as u64;
    let exact = MAX_ADJUSTED_COUNT - kept.min(MAX_ADJUSTED_COUNT);
    if exact == 0 || exact == MAX_ADJUSTED_COUNT {
        return exact;
    }
    let leading_zero_digits = (exact.leading_zeros() - 8) / 4;
    let digits = (PRECISION + leading_zero_digits).min(14);
    let shift = 4 * (14 - digits);
    if shift == 0 {
        return exact;
    }
    let rounded = (exact + (1 << (shift - 1))) >> shift << shift;
    // Rounding up never reaches "drop everything" for a ratio above 0.
    rounded.min(MAX_ADJUSTED_COUNT - 1)
}

/// `th` of a threshold: 14 hex digits without the trailing zeros ("0" for 0).
fn th_value(threshold: u64) -> String {
    if threshold == 0 {
        return "0".into();
    }
    let hex = format!("{threshold:014x}");
    hex.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(ratio: f64, slow_ms: u64) -> Sampler {
        Sampler::new(&SamplingConfig { ratio, keep_slower_than_ms: slow_ms }).expect("a ratio below 1")
    }

    /// A trace id whose randomness is `r`, the other bytes noise.
    fn id_with(r: u64) -> [u8; 16] {
        let mut id = [0xa5u8; 16];
        id[9..].copy_from_slice(&r.to_be_bytes()[1..]);
        id
    }

    #[test]
    fn thresholds_as_the_specification_writes_them() {
        // Examples of the OpenTelemetry tracestate probability sampling
        // specification and the collector's sampler (precision 4).
        for (p, th) in [(0.5, "8"), (0.25, "c"), (0.1, "e666"), (0.01, "fd71"), (0.001, "ffbe"), (1.0 / 3.0, "aaab")] {
            let s = sampler(p, 0);
            assert_eq!(s.ratio_state, format!("ot=th:{th}"), "ratio {p}");
        }
        assert_eq!(th_value(0), "0");
        assert!(Sampler::new(&SamplingConfig::default()).is_none(), "ratio 1 keeps everything: no sampler");
    }

    #[test]
    fn probability_is_the_rounded_ratio() {
        assert!((sampler(0.01, 0).probability() - 0.01).abs() < 0.00002);
        assert_eq!(sampler(0.5, 0).probability(), 0.5);
        assert_eq!(sampler(0.0, 0).probability(), 0.0);
    }

    #[test]
    fn kept_exactly_when_randomness_reaches_the_threshold() {
        let s = sampler(0.25, 0);
        let t = 0xc0_0000_0000_0000;
        assert_eq!(s.threshold, t);
        assert_eq!(s.decide(&id_with(t - 1), false, 0), Decision::Drop);
        assert_eq!(s.decide(&id_with(t), false, 0), Decision::Keep(Some("ot=th:c")));
        assert_eq!(s.decide(&id_with(MAX_ADJUSTED_COUNT - 1), false, 0), Decision::Keep(Some("ot=th:c")));
        assert_eq!(s.decide(&id_with(0), false, 0), Decision::Drop);
        // Only the last 7 bytes count.
        let mut id = id_with(t);
        id[..9].fill(0);
        assert_eq!(s.decide(&id, false, 0), Decision::Keep(Some("ot=th:c")));
    }

    #[test]
    fn failed_and_slow_requests_are_always_kept_with_probability_one() {
        let s = sampler(0.0, 250);
        let unlucky = id_with(0);
        assert_eq!(s.decide(&unlucky, false, 0), Decision::Drop);
        assert_eq!(s.decide(&unlucky, true, 0), Decision::Keep(Some("ot=th:0")));
        assert_eq!(s.decide(&unlucky, false, 249_999_999), Decision::Drop);
        assert_eq!(s.decide(&unlucky, false, 250_000_000), Decision::Keep(Some("ot=th:0")));
        // No latency rule: slow is ordinary.
        assert_eq!(sampler(0.0, 0).decide(&unlucky, false, u64::MAX), Decision::Drop);
        // Ratio 0 drops every ordinary request, even the luckiest.
        assert_eq!(sampler(0.0, 0).decide(&id_with(MAX_ADJUSTED_COUNT - 1), false, 0), Decision::Drop);
    }

    /// The same ids give the same decisions on any sampler with the same
    /// ratio, and a higher ratio keeps a superset: traces stay whole across
    /// nodes and across stages that sample again.
    #[test]
    fn consistent_across_samplers_and_ratios() {
        let mut rng = fastrand::Rng::with_seed(7);
        let ids: Vec<[u8; 16]> = (0..20_000).map(|_| rng.u128(..).to_be_bytes()).collect();
        let keep = |s: &Sampler| ids.iter().map(|id| s.decide(id, false, 0) != Decision::Drop).collect::<Vec<_>>();
        let (a, b, wide) = (keep(&sampler(0.1, 0)), keep(&sampler(0.1, 5)), keep(&sampler(0.5, 0)));
        assert_eq!(a, b);
        assert!(a.iter().zip(&wide).all(|(narrow, wide)| !narrow || *wide));
        let kept = a.iter().filter(|k| **k).count();
        assert!((1_800..=2_200).contains(&kept), "{kept} of 20,000 kept at 0.1");
    }
}
