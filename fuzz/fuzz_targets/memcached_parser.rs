//! Fuzz target: see `ebpf_core::fuzzing::memcached_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::memcached_parser(data));
