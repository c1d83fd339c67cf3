//! Fuzz target: see `ebpf_core::fuzzing::redis_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::redis_parser(data));
