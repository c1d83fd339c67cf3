//! Fuzz target: see `ebpf_core::fuzzing::pipeline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::pipeline(data));
