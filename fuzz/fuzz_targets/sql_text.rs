//! Fuzz target: see `ebpf_core::fuzzing::sql_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_core::fuzzing::sql_text(data));
