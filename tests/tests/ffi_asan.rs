//! The C ABI misused from C (tests/c/ffi_misuse.c, through the committed
//! header, linked against the release static library): NULLs, forged,
//! dangling and destroyed handles, double stop/free, poll after destroy,
//! racing frees, concurrent pollers woken by stop and by free, invalid UTF-8,
//! malformed configs just under the 4 MiB size limit and at 64 MiB (refused
//! unread), each configuration limit (size, pids, globs) at and one over it,
//! and the stats struct read into buffers of older, shorter and longer sizes. Built with AddressSanitizer and UndefinedBehaviorSanitizer
//! (leak checking on), and run again under valgrind when it is installed.
//! Every misuse must answer an error code, never crash or touch memory it
//! should not. Without root the checks that need running probes are skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use integration_tests::require_root;
use integration_tests::util::{repo_root, target_dir, which};

fn cc() -> PathBuf {
    std::env::var_os("CC").map(PathBuf::from).or_else(|| which("cc")).expect("a C compiler (cc)")
}

/// The release static library, or None (with a note) when it was not built.
fn static_lib() -> Option<PathBuf> {
    let lib = target_dir().join("release/libotel_ebpf.a");
    if lib.exists() {
        Some(lib)
    } else {
        eprintln!("skipped: {} missing (run `make lib` first; `make test` builds it)", lib.display());
        None
    }
}

/// Compiles tests/c/ffi_misuse.c into target/test-bins/`name`; `sanitize`
/// adds ASan+UBSan. Returns None when the compiler cannot sanitize.
fn build(lib: &Path, name: &str, sanitize: bool) -> Option<PathBuf> {
    let root = repo_root();
    let out_dir = target_dir().join("test-bins");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join(name);
    let mut cmd = Command::new(cc());
    cmd.args(["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"]);
    if sanitize {
        cmd.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]);
    }
    cmd.arg("-I").arg(root.join("ffi/include")).arg("-o").arg(&bin).arg(root.join("tests/c/ffi_misuse.c")).arg(lib);
    // From `make -C examples/embed-c native-libs`.
    cmd.args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
    let out = cmd.output().expect("run cc");
    if out.status.success() {
        return Some(bin);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(sanitize, "building ffi_misuse failed:\n{err}");
    eprintln!("note: cannot build with sanitizers here:\n{err}");
    None
}

/// Runs as root with everything; without root (when allowed to skip) without
/// the running-instance checks.
fn start_args() -> Vec<&'static str> {
    if require_root() {
        vec![]
    } else {
        vec!["--no-start"]
    }
}

fn report(out: &Output) -> String {
    // Valgrind warns once per bpf(BPF_LINK_CREATE) it does not model; noise here.
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("unhandled eBPF command"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ffi_misuse_under_address_and_undefined_sanitizers() {
    let Some(lib) = static_lib() else { return };
    let args = start_args();
    let Some(bin) = build(&lib, "ffi_misuse-asan", true) else {
        // No sanitizer runtime: still run the checks, unsanitized.
        let bin = build(&lib, "ffi_misuse", false).expect("plain build");
        let out = Command::new(&bin).args(&args).stdin(Stdio::null()).output().expect("run ffi_misuse");
        assert!(out.status.success(), "ffi_misuse failed ({}):\n{}", out.status, report(&out));
        return;
    };
    let out = Command::new(&bin)
        .args(&args)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86:allocator_may_return_null=0")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=87")
        .stdin(Stdio::null())
        .output()
        .expect("run ffi_misuse-asan");
    let stderr = report(&out);
    let code = out.status.code().unwrap_or_else(|| panic!("ffi_misuse-asan crashed ({}):\n{stderr}", out.status));
    assert!(code != 86 && code != 87 && !stderr.contains("Sanitizer"), "sanitizer report:\n{stderr}");
    assert_eq!(code, 0, "ffi_misuse-asan: checks failed:\n{stderr}");
    assert!(stderr.contains(" 0 failed"), "{stderr}");
    // Warnings are known issues, printed for the record.
    eprintln!("{stderr}");
}

#[test]
fn ffi_misuse_under_valgrind() {
    let Some(lib) = static_lib() else { return };
    let Some(valgrind) = which("valgrind") else {
        eprintln!("skipped: valgrind is not installed (`make deps` installs it)");
        return;
    };
    let args = start_args();
    let bin = build(&lib, "ffi_misuse", false).expect("plain build");
    // The 64 MiB and near-limit malformed configs take minutes under
    // valgrind; ASan covers them. The limit checks still run.
    let out = Command::new(valgrind)
        .args(["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"])
        .args(["--show-leak-kinds=definite", "--track-origins=yes"])
        .arg(&bin)
        .arg("--no-huge")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run valgrind");
    let stderr = report(&out);
    let code =
        out.status.code().unwrap_or_else(|| panic!("ffi_misuse under valgrind crashed ({}):\n{stderr}", out.status));
    assert_ne!(code, 99, "valgrind found errors:\n{stderr}");
    assert_eq!(code, 0, "ffi_misuse under valgrind: checks failed:\n{stderr}");
    eprintln!("{stderr}");
}
