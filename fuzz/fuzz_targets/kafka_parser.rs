//! Fuzz target: see `ebpf_core::fuzzing::kafka_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::kafka_parser(data));
