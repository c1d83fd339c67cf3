//! Kernel timestamps (CLOCK_MONOTONIC, from bpf_ktime_get_ns) to wall-clock
//! Unix nanoseconds for OTLP. The offset is re-read periodically so a clock
//! step (NTP, manual set) is followed.

#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset_ns: i128,
}

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a valid, owned struct.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_MONOTONIC now, in the kernel probes' time base.
pub fn monotonic_now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC) as u64
}

impl WallClock {
    pub fn new() -> Self {
        let mono = read(libc::CLOCK_MONOTONIC);
        let real = read(libc::CLOCK_REALTIME);
        Self { offset_ns: real - mono }
    }

    /// A fixed offset (wall = monotonic + offset), for replays and tests.
    pub fn from_offset_ns(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    pub fn to_unix_ns(&self, monotonic_ns: u64) -> u64 {
        (i128::from(monotonic_ns) + self.offset_ns).max(0) as u64
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn monotonic_now_maps_to_wall_now() {
        let clock = WallClock::new();
        let wall = clock.to_unix_ns(monotonic_now_ns());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(wall.abs_diff(now) < 50_000_000, "{wall} vs {now}");
    }
}
