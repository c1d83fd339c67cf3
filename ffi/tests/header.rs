//! The committed C header must be exactly what cbindgen generates from the
//! sources. `make header` (OTEL_EBPF_UPDATE_HEADER=1) rewrites it.

use std::path::PathBuf;

#[test]
fn committed_header_matches_sources() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/otel_ebpf.h");
    if std::env::var_os("OTEL_EBPF_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/otel_ebpf.h is out of date with ffi/src: run `make header` and commit the result"
    );
}
