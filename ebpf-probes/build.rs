//! Compiles every eBPF program into OUT_DIR with clang and generates the Rust
//! mirror of `include/events.h` with bindgen, so the kernel/user layouts have a
//! single source of truth.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (object name, top-level source). Each object is embedded by `src/lib.rs`.
const OBJECTS: &[(&str, &str)] = &[("probes", "bpf/probes.bpf.c"), ("flows", "bpf/flows.bpf.c")];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let include = manifest.join("include");

    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=OE_BPF_CFLAGS");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    for dir in ["bpf", "include"] {
        for entry in std::fs::read_dir(manifest.join(dir)).unwrap() {
            println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
        }
    }

    let clang = find_clang();
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        fail("libbpf headers not found (/usr/include/bpf/bpf_helpers.h): install the Debian package libbpf-dev (or run `make deps`)");
    }
    for (name, src) in OBJECTS {
        let obj = out.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            // -mcpu=v3: atomic fetch-and-add (connection sequence numbers); Linux 5.12+ (the exit-only data path needs 5.15).
            .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-Wall", "-Werror"])
            .args(env::var("OE_BPF_CFLAGS").unwrap_or_default().split_whitespace())
            .arg("-I")
            .arg(&include)
            .arg("-c")
            .arg(manifest.join(src))
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| fail(&format!("cannot run {clang}: {e}")));
        if !status.success() {
            fail(&format!("{clang} failed to compile {src}"));
        }
    }

    if env::var_os("LIBCLANG_PATH").is_none() && Path::new("/usr/lib/llvm-19/lib").exists() {
        env::set_var("LIBCLANG_PATH", "/usr/lib/llvm-19/lib");
    }
    let bindings = bindgen::Builder::default()
        .header(include.join("events.h").to_string_lossy())
        .allowlist_type("oe_.*")
        .allowlist_var("OE_.*")
        .derive_default(false)
        .derive_debug(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(ZerocopyDerives))
        .generate()
        .unwrap_or_else(|e| {
            fail(&format!("bindgen could not read include/events.h: {e} (is libclang-19-dev installed?)"))
        });
    bindings.write_to_file(out.join("events.rs")).unwrap();
}

/// Adds zerocopy derives so userspace decodes ring-buffer records without `unsafe`.
#[derive(Debug)]
struct ZerocopyDerives;

impl bindgen::callbacks::ParseCallbacks for ZerocopyDerives {
    fn add_derives(&self, info: &bindgen::callbacks::DeriveInfo<'_>) -> Vec<String> {
        if info.name.starts_with("oe_") {
            ["zerocopy::FromBytes", "zerocopy::Immutable", "zerocopy::KnownLayout"].map(String::from).to_vec()
        } else {
            vec![]
        }
    }
}

fn find_clang() -> String {
    if let Ok(c) = env::var("BPF_CLANG") {
        return c;
    }
    for c in ["clang-19", "clang"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c.to_string();
        }
    }
    fail("clang not found: install the Debian package clang-19 (or run `make deps`), or set BPF_CLANG")
}

fn fail(msg: &str) -> ! {
    eprintln!("error: ebpf-probes: {msg}");
    std::process::exit(1);
}
