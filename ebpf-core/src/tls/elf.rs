//! Where OpenSSL's functions are in an ELF file: the file offsets uprobes
//! attach at, from the dynamic symbol table or, for executables that link
//! OpenSSL statically, the full symbol table.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};

/// The functions the probes follow. Any may be missing (`SSL_read_ex` came
/// with OpenSSL 1.1.1); a file needs SSL_read and SSL_write (or their `_ex`
/// forms) to be worth attaching.
pub const FUNCTIONS: [&str; 5] = ["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_do_handshake"];

/// (function, file offset) of each function the file defines.
pub type Offsets = Vec<(&'static str, u64)>;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an ELF file")]
    NotElf,
    #[error("ELF parse error: {0}")]
    Parse(#[from] object::Error),
    #[error("built for {0:?}, not this machine")]
    OtherArch(object::Architecture),
}

/// The offsets of the `FUNCTIONS` `path` defines (not merely imports).
pub fn ssl_offsets(path: &Path) -> Result<Offsets, ElfError> {
    with_elf(path, ssl_offsets_of)
}

/// As `ssl_offsets`, on the bytes of the file.
pub fn offsets_in(data: &[u8]) -> Result<Offsets, ElfError> {
    parse_native(data).map(|obj| ssl_offsets_of(&obj))
}

/// Maps `path` and hands `f` its ELF object, when built for this machine:
/// one read of the file for every question asked about it.
pub fn with_elf<T>(path: &Path, f: impl FnOnce(&object::File<'_>) -> T) -> Result<T, ElfError> {
    let map = Mapped::open(path)?;
    let obj = parse_native(map.bytes())?;
    Ok(f(&obj))
}

/// The ELF object in `data`, when built for this machine (the probes read
/// registers with its calling convention).
fn parse_native(data: &[u8]) -> Result<object::File<'_>, ElfError> {
    if !data.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    let obj = object::File::parse(data)?;
    let native = if cfg!(target_arch = "x86_64") {
        object::Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        object::Architecture::Aarch64
    } else {
        obj.architecture()
    };
    if obj.architecture() != native {
        return Err(ElfError::OtherArch(obj.architecture()));
    }
    Ok(obj)
}

/// The offsets of the `FUNCTIONS` an object defines.
pub fn ssl_offsets_of(obj: &object::File<'_>) -> Offsets {
    let mut found: Offsets = Vec::new();
    // Shared libraries export them; static copies only have .symtab (if not stripped).
    for sym in obj.dynamic_symbols().chain(obj.symbols()) {
        if !sym.is_definition() || sym.kind() != object::SymbolKind::Text {
            continue;
        }
        let Ok(name) = sym.name_bytes() else { continue };
        // Versioned names ("SSL_write@@OPENSSL_3.0.0") in .symtab of some builds.
        let name = name.split(|&b| b == b'@').next().unwrap_or(name);
        let Some(&function) = FUNCTIONS.iter().find(|f| f.as_bytes() == name) else {
            continue;
        };
        if found.iter().any(|(f, _)| *f == function) {
            continue;
        }
        if let Some(offset) = file_offset(obj, &sym) {
            found.push((function, offset));
        }
    }
    found.sort_by_key(|(f, _)| FUNCTIONS.iter().position(|x| x == f));
    found
}

/// True when the offsets cover reading and writing.
pub fn is_usable(offsets: &Offsets) -> bool {
    let has = |a: &str, b: &str| offsets.iter().any(|(f, _)| *f == a || *f == b);
    has("SSL_read", "SSL_read_ex") && has("SSL_write", "SSL_write_ex")
}

/// Virtual address → file offset, through the section holding the symbol
/// (what the kernel's uprobe API wants).
pub fn file_offset(obj: &object::File<'_>, sym: &object::Symbol<'_, '_>) -> Option<u64> {
    let section = obj.section_by_index(sym.section_index()?).ok()?;
    let (offset, size) = section.file_range()?;
    let rel = sym.address().checked_sub(section.address())?;
    (rel < size).then(|| offset + rel)
}

/// A read-only private mapping of a whole file (libraries are mapped by the
/// processes that use them anyway; executables can be large, so no copy).
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "file too large"))?;
        if len == 0 {
            return Ok(Self { ptr: std::ptr::null_mut(), len: 0 });
        }
        // SAFETY: a fresh private read-only mapping of an open file; checked for failure.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `len` readable bytes at `ptr` until drop. A file truncated
        // meanwhile would fault, as for any mmap reader (aya maps libraries
        // the same way); libraries and executables are replaced, not truncated.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `open`, unmapped once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The system's libssl, when there is one (Debian: libssl3).
    fn system_libssl() -> Option<std::path::PathBuf> {
        ["/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    #[test]
    fn finds_openssl_functions_in_libssl() {
        let Some(lib) = system_libssl() else {
            eprintln!("no system libssl.so.3: skipped");
            return;
        };
        let offsets = ssl_offsets(&lib).unwrap();
        let names: Vec<&str> = offsets.iter().map(|(f, _)| *f).collect();
        assert_eq!(names, FUNCTIONS, "OpenSSL 3 defines all five");
        assert!(is_usable(&offsets));
        // Each offset is inside the file and distinct.
        let len = std::fs::metadata(&lib).unwrap().len();
        assert!(offsets.iter().all(|(_, o)| *o > 0 && *o < len), "{offsets:?}");
        let mut o: Vec<u64> = offsets.iter().map(|(_, o)| *o).collect();
        o.dedup();
        assert_eq!(o.len(), 5);
    }

    #[test]
    fn importers_and_other_files_have_none() {
        // This test binary imports nothing from OpenSSL; curl's binary imports from libcurl.
        let me = std::env::current_exe().unwrap();
        assert_eq!(ssl_offsets(&me).unwrap(), vec![]);
        assert!(matches!(offsets_in(b"#!/bin/sh\n"), Err(ElfError::NotElf)));
        assert!(matches!(offsets_in(b""), Err(ElfError::NotElf)));
        assert!(offsets_in(b"\x7fELF\x02\x01\x01garbage").is_err());
        assert!(matches!(ssl_offsets(Path::new("/nonexistent/libssl.so.3")), Err(ElfError::Io(_))));
        assert!(!is_usable(&vec![("SSL_read", 1), ("SSL_do_handshake", 2)]));
        assert!(is_usable(&vec![("SSL_read_ex", 1), ("SSL_write", 2)]));
    }
}
