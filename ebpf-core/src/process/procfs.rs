//! Bounded reads of /proc/<pid> files and parsers for their formats.
//!
//! Every read is capped: a process controls its own command line and
//! environment, and a pathological one must not make the pipeline allocate
//! megabytes. Every parser takes the file's content and never panics on odd
//! input; a process that exits mid-read simply yields `None` for what was not
//! read yet.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// /proc/<pid>/cmdline is read up to this many bytes; a longer one is truncated.
pub const CMDLINE_LIMIT: u64 = 64 << 10;
/// /proc/<pid>/status and /proc/<pid>/stat are a few KiB at most.
pub const SMALL_FILE_LIMIT: u64 = 16 << 10;

/// Reads at most `limit` bytes of a file.
pub fn read_capped(path: impl AsRef<Path>, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// What the identity needs from /proc/<pid>/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 4, `ppid`.
    pub parent_pid: u32,
    /// Field 22, `starttime`: clock ticks after boot. With the pid and the
    /// boot, it tells this process apart from any other that had the pid.
    pub start_time_ticks: u64,
}

/// Parses /proc/<pid>/stat: `pid (comm) state ppid … starttime …`.
///
/// `comm` is up to 16 bytes the process chose itself and may hold spaces and
/// parentheses (`(sd-pam)`, `a) 1 2 (b`), so the fields are counted from the
/// *last* `)`, which the kernel always writes right after comm.
pub fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // rest[0] is field 3 (state), so field n is rest[n - 3].
    let mut fields = rest.split_ascii_whitespace();
    let parent_pid = fields.nth(1)?.parse().ok()?;
    let start_time_ticks = fields.nth(22 - 5)?.parse().ok()?;
    Some(Stat { parent_pid, start_time_ticks })
}

/// The effective uid from /proc/<pid>/status (`Uid:\treal\teffective\tsaved\tfs`).
pub fn effective_uid(status: &[u8]) -> Option<u32> {
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Uid:"))
        .and_then(|ids| std::str::from_utf8(ids).ok())
        .and_then(|ids| ids.split_ascii_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
}

/// /proc/<pid>/cmdline (NUL-separated arguments) as one string, arguments
/// joined by a space, the way `ps -o args` shows it. `None` for an empty one
/// (kernel threads, zombies). Not UTF-8 bytes become U+FFFD.
pub fn command_line(cmdline: &[u8]) -> Option<String> {
    let args: Vec<_> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect();
    (!args.is_empty()).then(|| args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/<pid>/stat of a bash shell (Linux 6.x, 52 fields).
    const BASH_STAT: &[u8] = b"4242 (bash) S 4241 4242 4242 34816 4300 4194304 3318 25013 0 3 5 2 40 17 20 0 1 0 \
        987654 9240576 1304 18446744073709551615 94251468029952 94251468939141 140727442640112 0 0 0 65536 3686404 \
        1266761467 1 0 0 17 3 0 0 0 0 0 94251469186832 94251469234468 94251487301632 140727442643843 \
        140727442643848 140727442643848 140727442645998 0\n";

    #[test]
    fn stat_fields() {
        assert_eq!(parse_stat(BASH_STAT), Some(Stat { parent_pid: 4241, start_time_ticks: 987654 }));
    }

    #[test]
    fn stat_comm_with_spaces_and_parentheses() {
        let stat = b"77 (a) 1 2 (b)) R 76 77 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5555 1 1 1 1 1 1 0 0 0 0 0 0";
        assert_eq!(parse_stat(stat), Some(Stat { parent_pid: 76, start_time_ticks: 5555 }));
        let stat = b"900 (Web Content) S 1 900 900 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12 1 1";
        assert_eq!(parse_stat(stat), Some(Stat { parent_pid: 1, start_time_ticks: 12 }));
        // Not UTF-8 inside comm is fine: only the fields after it are decoded.
        let stat = b"5 (\xff\xfe) S 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 3 1 1";
        assert_eq!(parse_stat(stat), Some(Stat { parent_pid: 2, start_time_ticks: 3 }));
    }

    #[test]
    fn stat_malformed() {
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b"1 (init S 0"), None);
        assert_eq!(parse_stat(b"1 (init) S"), None);
        assert_eq!(parse_stat(b"1 (init) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 3"), None);
        // Truncated before starttime.
        assert_eq!(parse_stat(b"1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0"), None);
    }

    #[test]
    fn status_effective_uid() {
        let status = b"Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t812\nNgid:\t0\nPid:\t812\nPPid:\t1\n\
            TracerPid:\t0\nUid:\t0\t101\t101\t101\nGid:\t0\t101\t101\t101\nFDSize:\t64\n";
        assert_eq!(effective_uid(status), Some(101));
        assert_eq!(effective_uid(b"Name:\tx\n"), None);
        assert_eq!(effective_uid(b"Uid:\t0\n"), None);
        assert_eq!(effective_uid(b"Uid:\t0\tabc\t0\t0\n"), None);
    }

    #[test]
    fn cmdline_joined() {
        assert_eq!(
            command_line(b"/usr/bin/python3\0-m\0http.server\08000\0").as_deref(),
            Some("/usr/bin/python3 -m http.server 8000")
        );
        // setproctitle-style: one string, no trailing NUL.
        assert_eq!(command_line(b"nginx: worker process").as_deref(), Some("nginx: worker process"));
        assert_eq!(command_line(b"a\0\xff\0").as_deref(), Some("a \u{fffd}"));
        assert_eq!(command_line(b""), None);
        assert_eq!(command_line(b"\0\0"), None);
    }

    #[test]
    fn capped_read() {
        let me = format!("/proc/{}/cmdline", std::process::id());
        assert!(read_capped(&me, 4).unwrap().len() <= 4);
        assert!(read_capped("/proc/does-not-exist/cmdline", 4).is_err());
    }
}
