//! Go executables and their `crypto/tls`: where the probes of
//! `ebpf-probes/bpf/gotls.bpf.c` go. Go does not use OpenSSL; its TLS
//! plaintext passes through `crypto/tls.(*Conn).Read` and `.Write`.
//!
//! - A Go binary has a `.go.buildinfo` section (or at least Go's build id
//!   note); its Go version comes from there, or from `runtime.buildVersion`.
//! - The functions are found in `.symtab`: stripped binaries are not covered
//!   (their `.gopclntab` names functions too, but reading it is not done yet).
//! - Go >= 1.17 on x86-64 only: the probes read the register ABI.
//! - Uretprobes would corrupt goroutine stacks (the runtime moves them), so
//!   Read's returns are its `RET` instructions, found by decoding its machine
//!   code from start to end. Write needs none: it is captured at entry.
//! - "At entry" means just past the stack check that opens every Go function
//!   that may grow its stack: when the check fails the function calls
//!   `runtime.morestack` and jumps back to its first byte with the same
//!   arguments, so a probe on that byte would fire twice for one call (one
//!   Write reported twice).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use object::{Object, ObjectSection, ObjectSymbol};

use super::elf::file_offset;

pub const READ: &str = "crypto/tls.(*Conn).Read";
pub const WRITE: &str = "crypto/tls.(*Conn).Write";
/// Entry probes only: they flag the connection TLS before its first record.
pub const HANDSHAKES: [&str; 2] = ["crypto/tls.(*Conn).clientHandshake", "crypto/tls.(*Conn).serverHandshake"];
const BUILD_VERSION: &str = "runtime.buildVersion";
/// The first Go with the register ABI on amd64 (1.17).
const MIN_MINOR: u32 = 17;
/// Longest version string believed (they are like "go1.26.8 X:nodwarf5").
const MAX_VERSION_LEN: u64 = 256;

/// Where the probes go in one Go executable (file offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTls {
    /// As the binary says it, e.g. `go1.26.8`.
    pub version: String,
    pub read: GoFunction,
    /// Write's entry, past its stack check.
    pub write: u64,
    /// The handshake functions present.
    pub handshakes: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoFunction {
    pub entry: u64,
    /// Every `RET` instruction of the function.
    pub rets: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoError {
    #[error("Go binary without a symbol table (stripped): crypto/tls not instrumented")]
    Stripped,
    #[error("Go binary for {0:?}: crypto/tls is instrumented on x86-64 only")]
    Arch(object::Architecture),
    #[error("Go version unknown: crypto/tls not instrumented")]
    UnknownVersion,
    #[error("{0}: crypto/tls is instrumented from Go 1.17 (register ABI) on")]
    TooOld(String),
    #[error("{function}: {why}")]
    Function { function: &'static str, why: String },
}

/// The probe points of a Go binary using `crypto/tls`; `Ok(None)` for
/// anything else (not Go, or Go without TLS).
pub fn inspect(obj: &object::File<'_>) -> Result<Option<GoTls>, GoError> {
    if obj.section_by_name(".go.buildinfo").is_none() && obj.section_by_name(".note.go.buildid").is_none() {
        return Ok(None);
    }
    let mut read = None;
    let mut write = None;
    let mut handshakes = Vec::new();
    let mut build_version = None;
    let mut any_symbol = false;
    for sym in obj.symbols() {
        any_symbol = true;
        let Ok(name) = sym.name() else { continue };
        match name {
            READ if sym.is_definition() => read = Some(sym),
            WRITE if sym.is_definition() => write = Some(sym),
            BUILD_VERSION => build_version = Some(sym.address()),
            _ if HANDSHAKES.contains(&name) && sym.is_definition() => {
                handshakes.extend(file_offset(obj, &sym));
            }
            _ => {}
        }
    }
    if !any_symbol {
        return Err(GoError::Stripped);
    }
    let (Some(read), Some(write)) = (read, write) else {
        return Ok(None); // no crypto/tls linked in
    };
    if obj.architecture() != object::Architecture::X86_64 {
        return Err(GoError::Arch(obj.architecture()));
    }
    let version = buildinfo_version(obj)
        .or_else(|| build_version.and_then(|addr| go_string_at(obj, addr, 8, false)))
        .ok_or(GoError::UnknownVersion)?;
    match minor_version(&version) {
        None => return Err(GoError::UnknownVersion),
        Some(m) if m < MIN_MINOR => return Err(GoError::TooOld(version)),
        Some(_) => {}
    }
    let (write_entry, write_code) = function_code(obj, &write, WRITE)?;
    let write = write_entry + past_stack_check(write_code);
    Ok(Some(GoTls { version, read: function(obj, &read, READ)?, write, handshakes }))
}

/// A function's entry (file offset) and machine code.
fn function_code<'a>(
    obj: &object::File<'a>,
    sym: &object::Symbol<'a, '_>,
    name: &'static str,
) -> Result<(u64, &'a [u8]), GoError> {
    let fail = |why: &str| GoError::Function { function: name, why: why.to_string() };
    let entry = file_offset(obj, sym).ok_or_else(|| fail("not in the file"))?;
    let section = sym.section_index().and_then(|i| obj.section_by_index(i).ok()).ok_or_else(|| fail("no section"))?;
    let data = section.data().map_err(|_| fail("unreadable section"))?;
    let start = sym.address().checked_sub(section.address()).and_then(|s| usize::try_from(s).ok());
    let start = start.ok_or_else(|| fail("bad address"))?;
    let len = usize::try_from(sym.size()).map_err(|_| fail("bad size"))?;
    let code =
        start.checked_add(len).and_then(|end| data.get(start..end)).ok_or_else(|| fail("outside its section"))?;
    Ok((entry, code))
}

/// A function's entry and `RET`s, as file offsets.
fn function(obj: &object::File<'_>, sym: &object::Symbol<'_, '_>, name: &'static str) -> Result<GoFunction, GoError> {
    let fail = |why: &str| GoError::Function { function: name, why: why.to_string() };
    let (entry, code) = function_code(obj, sym, name)?;
    let rets = ret_offsets(code).map_err(|e| GoError::Function { function: name, why: e })?;
    if rets.is_empty() {
        return Err(fail("no RET instruction"));
    }
    Ok(GoFunction { entry, rets: rets.into_iter().map(|r| entry + r).collect() })
}

/// The offsets of the `RET` instructions in `code`, one function's x86-64
/// machine code, decoded from its first byte to its last. Go puts no data
/// between a function's instructions (jump tables live in rodata) and pads
/// with `INT3`, so the decoding stays on instruction boundaries; anything
/// undecodable is refused, since a probe inside an instruction would corrupt it.
pub fn ret_offsets(code: &[u8]) -> Result<Vec<u64>, String> {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut rets = Vec::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        if insn.is_invalid() {
            return Err(format!("undecodable instruction at +{:#x}", insn.ip()));
        }
        if insn.mnemonic() == Mnemonic::Ret {
            rets.push(insn.ip());
        }
    }
    Ok(rets)
}

/// How many instructions a Go stack check may take up to its branch:
/// `CMPQ SP, 0x10(R14); JBE`, or `LEAQ -frame(SP), R12` before them (large
/// frames), or for huge frames `MOVQ SP, R12; SUBQ $frame, R12; JCS` first.
const STACK_CHECK_MAX_INSNS: usize = 6;

/// The offset in `code` (a Go function, amd64) of the first instruction past
/// its stack check: the compare of SP (or R12) with `g.stackguard0`
/// (`0x10(R14)`) and the conditional branch to `runtime.morestack` after it.
/// 0 for a function that opens without one (`NOSPLIT`, or a shape not
/// recognised): nothing re-enters it, so its first byte is the place.
pub fn past_stack_check(code: &[u8]) -> u64 {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut compared = false;
    for _ in 0..STACK_CHECK_MAX_INSNS {
        if !decoder.can_decode() {
            break;
        }
        decoder.decode_out(&mut insn);
        if insn.is_invalid() {
            break;
        }
        if compared {
            // Go branches with JBE (unsigned); any other condition is no stack check.
            return if matches!(insn.mnemonic(), Mnemonic::Jbe | Mnemonic::Jb) { insn.next_ip() } else { 0 };
        }
        compared = insn.mnemonic() == Mnemonic::Cmp
            && insn.op_count() == 2
            && insn.op1_kind() == OpKind::Memory
            && insn.memory_base() == Register::R14
            && insn.memory_displacement64() == 0x10;
    }
    0
}

/// The Go version `.go.buildinfo` records. Layout (Go's debug/buildinfo):
/// 14 bytes of magic, the pointer size, flags, then either (flags & 2, Go
/// 1.18+) the version inline at 32 as a varint-prefixed string, or (Go
/// 1.13–1.17) at 16 a pointer to the version's string header.
fn buildinfo_version(obj: &object::File<'_>) -> Option<String> {
    let data = obj.section_by_name(".go.buildinfo")?.data().ok()?;
    match parse_buildinfo(data)? {
        BuildInfo::Inline(v) => Some(v),
        BuildInfo::At { addr, ptr_size, big_endian } => go_string_at(obj, addr, ptr_size, big_endian),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum BuildInfo {
    Inline(String),
    /// The address of the version's string header.
    At {
        addr: u64,
        ptr_size: usize,
        big_endian: bool,
    },
}

fn parse_buildinfo(data: &[u8]) -> Option<BuildInfo> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    if data.len() < 32 || !data.starts_with(MAGIC) {
        return None;
    }
    let (ptr_size, flags) = (usize::from(data[14]), data[15]);
    if flags & 2 != 0 {
        let (len, n) = uvarint(&data[32..])?;
        let start = 32 + n;
        let end = start.checked_add(usize::try_from(len.min(MAX_VERSION_LEN)).ok()?)?;
        return String::from_utf8(data.get(start..end)?.to_vec()).ok().map(BuildInfo::Inline);
    }
    let big_endian = flags & 1 != 0;
    let addr = read_uint(data.get(16..16 + ptr_size)?, big_endian)?;
    Some(BuildInfo::At { addr, ptr_size, big_endian })
}

/// A Go string whose header (pointer, length) is at `addr`.
fn go_string_at(obj: &object::File<'_>, addr: u64, ptr_size: usize, big_endian: bool) -> Option<String> {
    let header = read_at(obj, addr, ptr_size as u64 * 2)?;
    let ptr = read_uint(&header[..ptr_size], big_endian)?;
    let len = read_uint(&header[ptr_size..], big_endian)?;
    if len > MAX_VERSION_LEN {
        return None;
    }
    String::from_utf8(read_at(obj, ptr, len)?.to_vec()).ok()
}

/// `len` bytes at virtual address `addr`, from the section holding them.
fn read_at<'a>(obj: &object::File<'a>, addr: u64, len: u64) -> Option<&'a [u8]> {
    obj.sections().find_map(|s| {
        let rel = addr.checked_sub(s.address())?;
        if rel.checked_add(len)? > s.size() {
            return None;
        }
        s.data().ok()?.get(usize::try_from(rel).ok()?..usize::try_from(rel + len).ok()?)
    })
}

fn read_uint(bytes: &[u8], big_endian: bool) -> Option<u64> {
    match (bytes.len(), big_endian) {
        (4, false) => Some(u64::from(u32::from_le_bytes(bytes.try_into().ok()?))),
        (4, true) => Some(u64::from(u32::from_be_bytes(bytes.try_into().ok()?))),
        (8, false) => Some(u64::from_le_bytes(bytes.try_into().ok()?)),
        (8, true) => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// Go's `binary.Uvarint`: the value and the bytes it took.
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The minor version of Go 1 a version string names: `go1.26.8`,
/// `go1.22rc1`, `devel go1.27-abcdef Tue ...` (a toolchain built from source).
pub fn minor_version(version: &str) -> Option<u32> {
    let rest = &version[version.find("go1.")? + 4..];
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_refuses_undecodable_code() {
        let code = [
            0x49, 0x3b, 0x66, 0x10, // cmp rsp, [r14+0x10]
            0x76, 0x08, // jbe +8
            0x55, // push rbp
            0x48, 0x89, 0xe5, // mov rbp, rsp
            0x5d, // pop rbp
            0xc3, // ret
            0x31, 0xc0, // xor eax, eax
            0xc3, // ret
            0xe8, 0x00, 0x00, 0x00, 0x00, // call
            0xeb, 0xe8, // jmp back
            0xcc, 0xcc, // int3 padding
        ];
        assert_eq!(ret_offsets(&code).unwrap(), [11, 14]);
        // A C3 byte inside another instruction is no RET.
        assert_eq!(ret_offsets(&[0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00]).unwrap(), Vec::<u64>::new());
        assert!(ret_offsets(&[0xc3, 0x0f, 0xff]).is_err(), "0f ff is no instruction");
        assert!(ret_offsets(&[0x48]).is_err(), "cut short");
    }

    /// Prologues of go1.26's crypto/tls (`go tool objdump`).
    #[test]
    fn steps_past_the_stack_check() {
        // (*Conn).Read: CMPQ SP, 0x10(R14); JBE rel32; PUSHQ BP
        let read = [0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x7a, 0x03, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5];
        assert_eq!(past_stack_check(&read), 10);
        // (*Conn).Write: LEAQ -0x48(SP), R12; CMPQ R12, 0x10(R14); JBE rel32; PUSHQ BP
        let write = [0x4c, 0x8d, 0x64, 0x24, 0xb8, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x93, 0x07, 0x00, 0x00, 0x55];
        assert_eq!(past_stack_check(&write), 15);
        // A short JBE.
        assert_eq!(past_stack_check(&[0x49, 0x3b, 0x66, 0x10, 0x76, 0x08, 0x55]), 6);
        // A huge frame: MOVQ SP, R12; SUBQ $0x20000, R12; JB; CMPQ R12, 0x10(R14); JBE; PUSHQ BP
        let huge = [
            0x49, 0x89, 0xe4, 0x49, 0x81, 0xec, 0x00, 0x00, 0x02, 0x00, 0x72, 0x10, 0x4d, 0x3b, 0x66, 0x10, 0x76, 0x0a,
            0x55,
        ];
        assert_eq!(past_stack_check(&huge), 18);
        // No stack check (NOSPLIT), a compare with another field, a compare
        // not followed by a branch, code cut short: the first byte.
        assert_eq!(past_stack_check(&[0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3]), 0);
        assert_eq!(past_stack_check(&[0x49, 0x3b, 0x66, 0x18, 0x76, 0x08, 0x55]), 0);
        assert_eq!(past_stack_check(&[0x49, 0x3b, 0x66, 0x10, 0x55, 0x76, 0x08]), 0);
        assert_eq!(past_stack_check(&[0x49, 0x3b, 0x66, 0x10]), 0);
        assert_eq!(past_stack_check(&[]), 0);
    }

    #[test]
    fn reads_go_versions() {
        assert_eq!(minor_version("go1.26.8"), Some(26));
        assert_eq!(minor_version("go1.17"), Some(17));
        assert_eq!(minor_version("go1.22rc1"), Some(22));
        assert_eq!(minor_version("go1.26.8 X:nodwarf5"), Some(26));
        assert_eq!(minor_version("devel go1.27-0123abcd Tue Jan 1 00:00:00 2030 +0000"), Some(27));
        assert_eq!(minor_version("go1.16.15"), Some(16));
        assert_eq!(minor_version("devel +abcdef"), None);
        assert_eq!(minor_version(""), None);
    }

    #[test]
    fn parses_buildinfo_headers() {
        let mut inline = b"\xff Go buildinf:\x08\x02".to_vec();
        inline.resize(32, 0);
        inline.push(8);
        inline.extend_from_slice(b"go1.26.8\x01\x02more");
        assert_eq!(parse_buildinfo(&inline), Some(BuildInfo::Inline("go1.26.8".into())));
        let mut old = b"\xff Go buildinf:\x08\x00".to_vec();
        old.extend_from_slice(&0x4f_1234u64.to_le_bytes());
        old.resize(32, 0);
        assert_eq!(parse_buildinfo(&old), Some(BuildInfo::At { addr: 0x4f_1234, ptr_size: 8, big_endian: false }));
        assert_eq!(parse_buildinfo(b"\xff Go buildinf:\x08\x02"), None, "too short");
        assert_eq!(parse_buildinfo(&[0; 64]), None);
        assert_eq!(uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(uvarint(&[0x80]), None);
    }

    /// A Go program using crypto/tls, built with the installed toolchain
    /// (skipped without one): the probe points land on the stack-check
    /// prologue and on `RET` bytes.
    #[test]
    fn finds_crypto_tls_in_a_go_binary() {
        let Some(go) = ["go", "/usr/local/go/bin/go"]
            .into_iter()
            .find(|g| std::process::Command::new(g).arg("version").output().is_ok_and(|o| o.status.success()))
        else {
            eprintln!("no Go toolchain: skipped");
            return;
        };
        let dir = std::env::temp_dir().join(format!("oe-go-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("go.mod"), "module gotlsunit\n\ngo 1.17\n").unwrap();
        std::fs::write(
            dir.join("main.go"),
            "package main\n\nimport (\n\t\"crypto/tls\"\n\t\"os\"\n)\n\nfunc main() {\n\
             \tc, err := tls.Dial(\"tcp\", os.Args[1], &tls.Config{InsecureSkipVerify: true})\n\
             \tif err == nil {\n\t\tc.Write([]byte(\"x\"))\n\t\tc.Read(make([]byte, 1))\n\t}\n}\n",
        )
        .unwrap();
        let build = |out: &str, extra: &[&str]| {
            let o = std::process::Command::new(go)
                .args(["build", "-o", out])
                .args(extra)
                .arg(".")
                .current_dir(&dir)
                .env("CGO_ENABLED", "0")
                .output()
                .unwrap();
            assert!(o.status.success(), "go build: {}", String::from_utf8_lossy(&o.stderr));
            dir.join(out)
        };
        let bin = build("full", &[]);
        let stripped = build("stripped", &["-ldflags=-s -w"]);

        let found = super::super::elf::with_elf(&bin, inspect).unwrap().unwrap().unwrap();
        let bytes = std::fs::read(&bin).unwrap();
        assert!(minor_version(&found.version).unwrap() >= MIN_MINOR, "{}", found.version);
        // Go's stack check opens Read: CMPQ SP (or R12 = SP - frame), 0x10(R14).
        let prologue = &bytes[found.read.entry as usize..found.read.entry as usize + 16];
        assert!(prologue.windows(3).any(|w| w == [0x3b, 0x66, 0x10]), "{prologue:x?} {found:?}");
        // Write's probe sits just past its check's branch (JBE: 0x76 or 0x0f 0x86).
        let before = &bytes[found.write as usize - 16..found.write as usize];
        assert!(before.windows(3).any(|w| w == [0x3b, 0x66, 0x10]), "{before:x?} {found:?}");
        assert!(before[14] == 0x76 || before[10..12] == [0x0f, 0x86], "{before:x?} {found:?}");
        let read = &found.read;
        assert!(!read.rets.is_empty(), "{found:?}");
        assert!(read.rets.iter().all(|&r| r > read.entry && bytes[r as usize] == 0xc3), "{found:?}");
        assert!(!found.handshakes.is_empty(), "tls.Dial's clientHandshake: {found:?}");
        assert_eq!(super::super::elf::with_elf(&stripped, inspect).unwrap(), Err(GoError::Stripped));
        let me = std::env::current_exe().unwrap();
        assert_eq!(super::super::elf::with_elf(&me, inspect).unwrap(), Ok(None), "not Go");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
