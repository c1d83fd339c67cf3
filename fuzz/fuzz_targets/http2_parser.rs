//! Fuzz target: see `ebpf_core::fuzzing::http2_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::http2_parser(data));
