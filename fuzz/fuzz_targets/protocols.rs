//! Fuzz target: see `ebpf_core::fuzzing::protocols` (every registered parser).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::protocols(data));
