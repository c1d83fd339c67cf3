//! RED metrics: see the metrics helper brief (work in progress).
