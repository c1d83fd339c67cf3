//! Process selection as the kernel applies it: `pid_bits`, one bit per pid,
//! set when a process's decision is not the mode's default (see common.h).
//! The array is mapped into our memory so that bits flip with atomic
//! operations: the fork and exit programs flip bits of the same words, and
//! a whole-word update through `bpf()` could undo theirs.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{MapData, MapError};
use aya::sys::SyscallError;
use ebpf_probes::abi;

use super::mapping::{page_size, Mapping};

/// Pids the kernel can hand out (`PID_MAX_LIMIT` on 64-bit): the array's
/// size when `pid_max` cannot be read.
const PID_MAX_LIMIT: u32 = 4 << 20;

/// Words of `pid_bits` for this host: `pid_max` bits (512 KiB at most).
pub(super) fn pid_words() -> u32 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(PID_MAX_LIMIT)
        .clamp(64, PID_MAX_LIMIT);
    pid_max.div_ceil(64)
}

/// Process selection decisions the kernel applies.
pub struct PidFilter {
    bits: Mapping,
    words: usize,
    /// What a set bit means: traced (include mode) or skipped (exclude mode).
    bit_means_traced: bool,
    /// Set once a pid past the array was seen (pid_max raised after start-up).
    warned: bool,
    _map: MapData,
}

impl PidFilter {
    /// `map` is `pid_bits` as loaded; `pid_mode` an `OE_PIDS_*` other than all.
    pub(super) fn new(map: MapData, pid_mode: u8) -> Result<Self, MapError> {
        let words = map.info()?.max_entries() as usize;
        let page = page_size();
        let len = (words * 8).div_ceil(page) * page;
        let fd = map.fd().as_fd().as_raw_fd();
        let bits = Mapping::new(fd, len, 0, libc::PROT_READ | libc::PROT_WRITE)
            .map_err(|io_error| SyscallError { call: "mmap", io_error })?;
        Ok(Self { bits, words, bit_means_traced: pid_mode == abi::OE_PIDS_INCLUDE as u8, warned: false, _map: map })
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping holds `words` 8-byte values, page-aligned, for
        // as long as self; the kernel writes them only with atomic
        // operations, as AtomicU64 does here.
        unsafe { std::slice::from_raw_parts(self.bits.ptr.cast::<AtomicU64>(), self.words) }
    }

    pub fn set(&mut self, tgid: u32, traced: bool) {
        let bit = 1u64 << (tgid % 64);
        let Some(word) = self.words().get((tgid / 64) as usize) else {
            if !self.warned {
                self.warned = true;
                log::warn!("pid {tgid} is past pid_max at start-up: such processes keep the default selection");
            }
            return;
        };
        if traced == self.bit_means_traced {
            word.fetch_or(bit, Ordering::SeqCst);
        } else {
            word.fetch_and(!bit, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pid_words;

    #[test]
    fn the_bitmap_covers_pid_max() {
        let words = pid_words();
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
        assert!(u64::from(words) * 64 >= u64::from(pid_max), "{words} words for pid_max {pid_max}");
        assert!(words <= (4 << 20) / 64);
    }
}
