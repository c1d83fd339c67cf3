//! Where TLS libraries are: the files a process maps (`/proc/<pid>/maps`) and
//! the system's library cache (`ldconfig -p`). Pure parsing, no I/O, so the
//! rules are unit-tested; `super` reads the files.

use std::collections::HashSet;

/// A file's identity: (device, inode), as `stat` gives it (`st_dev` is
/// `makedev(major, minor)`, which is what maps lines print in hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// One line of `/proc/<pid>/maps` that maps a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    pub id: FileId,
    /// As the process sees it (its own mount namespace and root).
    pub path: &'a str,
    pub executable: bool,
}

/// Parses `start-end perms offset major:minor inode path`; None for
/// anonymous mappings, pseudo-files (`[heap]`), deleted files and bad lines.
pub fn parse_maps_line(line: &str) -> Option<MapsEntry<'_>> {
    let mut rest = line;
    let mut field = || {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        let (f, r) = s.split_at(end);
        rest = r;
        (!f.is_empty()).then_some(f)
    };
    let range = field()?;
    let perms = field()?;
    let _offset = field()?;
    let dev = field()?;
    let inode = field()?;
    let path = rest.trim_start_matches(' ').trim_end_matches('\n');
    if !range.contains('-') || perms.len() < 4 {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let (major, minor) = (u32::from_str_radix(major, 16).ok()?, u32::from_str_radix(minor, 16).ok()?);
    let ino: u64 = inode.parse().ok()?;
    // A file replaced after it was mapped: the path names another file now.
    if ino == 0 || !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    Some(MapsEntry {
        id: FileId { dev: libc::makedev(major, minor), ino },
        path,
        executable: perms.as_bytes()[2] == b'x',
    })
}

/// Could this file be a TLS library worth a look at its symbols? OpenSSL's
/// and BoringSSL's `libssl.so*`, wheels' vendored copies (`libssl-1a2b3c4d.so.3`),
/// and Python's `_ssl` module, which some builds link OpenSSL into. The ELF
/// symbol check (`super::elf`) has the last word (NSS's `libssl3.so` has none).
pub fn is_tls_candidate(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with("libssl") && name.contains(".so")) || (name.starts_with("_ssl.") && name.ends_with(".so"))
}

/// The TLS candidates a process maps, once each (a library is mapped several
/// times: text, data, read-only segments), in order of first appearance.
pub fn tls_candidates(maps: &str) -> Vec<MapsEntry<'_>> {
    let mut seen = HashSet::new();
    maps.lines().filter_map(parse_maps_line).filter(|e| is_tls_candidate(e.path) && seen.insert(e.id)).collect()
}

/// The TLS candidates of the system's library cache (`ldconfig -p` output) for
/// this machine's architecture: `\tlibssl.so.3 (libc6,x86-64) => /lib/.../libssl.so.3`.
pub fn ldconfig_candidates(output: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in output.lines() {
        let Some((left, path)) = line.split_once(" => ") else {
            continue;
        };
        let path = path.trim();
        let mut words = left.split_whitespace();
        let soname = words.next().unwrap_or("");
        let tags = words.next().unwrap_or("");
        if !is_tls_candidate(soname) || !path.starts_with('/') || !native_arch(tags) || out.contains(&path) {
            continue;
        }
        out.push(path);
    }
    out
}

/// The probes read arguments with this machine's calling convention:
/// libraries of another ABI (i386 on x86-64) are skipped.
fn native_arch(tags: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        tags.contains("x86-64")
    } else if cfg!(target_arch = "aarch64") {
        tags.contains("AArch64")
    } else {
        true
    }
}

/// Several paths of one file (symlinks, hard links, the same image in several
/// containers) are attached once: the first path of each id.
pub fn dedupe_by_id<T: Clone>(items: &[(FileId, T)]) -> Vec<(FileId, T)> {
    let mut seen = HashSet::new();
    items.iter().filter(|(id, _)| seen.insert(*id)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c8a00000-55d0c8a01000 r--p 00000000 fd:01 1835021                    /usr/bin/python3.11
7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 
7f1c2d000000-7f1c2d020000 r--p 00000000 fd:01 1311011                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2d020000-7f1c2d080000 r-xp 00020000 fd:01 1311011                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2d080000-7f1c2d0a0000 r--p 00080000 fd:01 1311011                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2e000000-7f1c2e100000 r-xp 00000000 fd:01 1311012                    /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f1c2f000000-7f1c2f010000 r-xp 00000000 00:2f 77                         /opt/venv/lib/python3.11/site-packages/cryptography.libs/libssl-1a2b3c4d.so.3
7f1c30000000-7f1c30010000 r-xp 00000000 fd:01 99                         /tmp/old/libssl.so.1.1 (deleted)
7f1c31000000-7f1c31010000 r-xp 00000000 fd:01 1400000                    /usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so
7f1c32000000-7f1c32010000 r-xp 00000000 fd:01 1500000                    /usr/lib/x86_64-linux-gnu/libssl3.so
7f1c33000000-7f1c33010000 r-xp 00000000 fd:01 1600000                    /srv/my libs/libssl.so.3
7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0                          [stack]
7ffd1a100000-7ffd1a102000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn parses_maps_lines() {
        let e = parse_maps_line(
            "7f1c2d020000-7f1c2d080000 r-xp 00020000 fd:01 1311011                    /usr/lib/x86_64-linux-gnu/libssl.so.3",
        )
        .unwrap();
        assert_eq!(e.id, FileId { dev: libc::makedev(0xfd, 1), ino: 1311011 });
        assert_eq!(e.path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
        assert!(e.executable);
        let e = parse_maps_line("7f1c2d000000-7f1c2d020000 r--p 00000000 103:02 42 /lib/libssl.so.3").unwrap();
        assert_eq!(e.id, FileId { dev: libc::makedev(0x103, 2), ino: 42 });
        assert!(!e.executable);
        // Spaces in a path are kept.
        assert_eq!(parse_maps_line("1-2 r-xp 0 08:01 5   /a b/libssl.so").unwrap().path, "/a b/libssl.so");
        for bad in [
            "",
            "7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 ",
            "7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0                          [stack]",
            "1-2 r-xp 0 fd:01 99 /tmp/libssl.so.1.1 (deleted)",
            "1-2 r-xp 0 zz:01 99 /lib/libssl.so",
            "1-2 r-xp 0 fd:01 nine /lib/libssl.so",
            "garbage",
        ] {
            assert_eq!(parse_maps_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn candidates_are_deduped_by_device_and_inode() {
        let found: Vec<(&str, u64)> = tls_candidates(MAPS).iter().map(|e| (e.path, e.id.ino)).collect();
        assert_eq!(
            found,
            [
                ("/usr/lib/x86_64-linux-gnu/libssl.so.3", 1311011),
                ("/opt/venv/lib/python3.11/site-packages/cryptography.libs/libssl-1a2b3c4d.so.3", 77),
                ("/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", 1400000),
                ("/usr/lib/x86_64-linux-gnu/libssl3.so", 1500000),
                ("/srv/my libs/libssl.so.3", 1600000),
            ]
        );
        // Same inode on another device is another file; same id twice is one.
        let a = FileId { dev: 1, ino: 7 };
        let b = FileId { dev: 2, ino: 7 };
        let items = [(a, "/x/libssl.so.3"), (b, "/y/libssl.so.3"), (a, "/x/libssl.so")];
        assert_eq!(dedupe_by_id(&items), [(a, "/x/libssl.so.3"), (b, "/y/libssl.so.3")]);
    }

    #[test]
    fn candidate_names() {
        for yes in ["/lib/libssl.so", "/lib/libssl.so.3", "/lib/libssl.so.1.1", "libssl-1a2b.so.3", "/x/_ssl.abi3.so"] {
            assert!(is_tls_candidate(yes), "{yes}");
        }
        for no in ["/lib/libcrypto.so.3", "/lib/libssl.a", "/usr/bin/openssl", "/lib/libgnutls.so.30", "/x/_ssl.py"] {
            assert!(!is_tls_candidate(no), "{no}");
        }
    }

    #[test]
    fn parses_ldconfig() {
        let out = "\
1234 libs found in cache `/etc/ld.so.cache'
\tlibxmlsec1-openssl.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libxmlsec1-openssl.so.1
\tlibssl3.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl3.so
\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
\tlibssl.so.3 (libc6) => /lib/i386-linux-gnu/libssl.so.3
\tlibssl.so.1.1 (libc6,x86-64) => /usr/local/lib/libssl.so.1.1
\tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so
\tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so
Cache generated by: ldconfig (Debian GLIBC 2.36-9) stable release version 2.36
";
        let found = ldconfig_candidates(out);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                found,
                [
                    "/lib/x86_64-linux-gnu/libssl3.so",
                    "/lib/x86_64-linux-gnu/libssl.so.3",
                    "/usr/local/lib/libssl.so.1.1",
                    "/lib/x86_64-linux-gnu/libssl.so",
                ]
            );
        }
        assert!(ldconfig_candidates("").is_empty());
    }
}
