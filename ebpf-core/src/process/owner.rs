//! `process.owner`: the user name of a process's effective uid, looked up in
//! this host's /etc/passwd.
//!
//! The file is parsed directly rather than through getpwuid(3): NSS modules
//! (LDAP, sssd) can block on the network, and this runs on the pipeline's
//! thread. Users known only to NSS have no `process.owner`. The uid is the
//! host's view, as `ps` shows it, also for a process in a container.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use super::procfs::read_capped;

/// /etc/passwd is read up to this size.
const PASSWD_LIMIT: u64 = 4 << 20;

/// uid → user name from the content of a passwd(5) file: lines of
/// `name:password:uid:gid:gecos:home:shell`. The first entry of a uid wins
/// (as with getpwuid(3)); comments, blank and malformed lines and NIS compat
/// entries (`+`, `-`) are skipped.
pub fn parse_passwd(passwd: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for (name, uid) in passwd_entries(passwd) {
        names.entry(uid).or_insert_with(|| name.to_string());
    }
    names
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32)> {
    passwd.lines().filter_map(|line| {
        if line.starts_with(['#', '+', '-']) {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next().filter(|n| !n.is_empty())?;
        let uid = fields.nth(1)?.trim().parse().ok()?;
        Some((name, uid))
    })
}

/// uid → user name, from a passwd file read once and re-read when a uid is
/// not found and the file changed since (a user added after start).
#[derive(Debug)]
pub struct UserNames {
    path: PathBuf,
    modified: Option<SystemTime>,
    loaded: bool,
    names: HashMap<u32, String>,
}

impl Default for UserNames {
    fn default() -> Self {
        Self::from_file("/etc/passwd")
    }
}

impl UserNames {
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), modified: None, loaded: false, names: HashMap::new() }
    }

    pub fn name(&mut self, uid: u32) -> Option<String> {
        if let Some(name) = self.names.get(&uid) {
            return Some(name.clone());
        }
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if !self.loaded || modified != self.modified {
            self.load(modified);
        }
        self.names.get(&uid).cloned()
    }

    fn load(&mut self, modified: Option<SystemTime>) {
        self.loaded = true;
        self.modified = modified;
        // A file that cannot be read leaves the names already known.
        let Ok(content) = read_capped(&self.path, PASSWD_LIMIT) else { return };
        self.names = parse_passwd(&String::from_utf8_lossy(&content));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excerpt of a Debian /etc/passwd, with the odd lines passwd(5) allows.
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # a comment\n\
        \n\
        +nisuser::::::\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        broken:x:notanumber:1::/:/bin/sh\n\
        short:x\n\
        nginx:x:101:101:nginx user:/nonexistent:/bin/false\n\
        toor:x:0:0:second root:/root:/bin/sh\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash";

    #[test]
    fn passwd_lookup() {
        let names = parse_passwd(PASSWD);
        let name = |uid| names.get(&uid).map(String::as_str);
        assert_eq!(name(0), Some("root"));
        assert_eq!(name(1), Some("daemon"));
        assert_eq!(name(33), Some("www-data"));
        assert_eq!(name(101), Some("nginx"));
        assert_eq!(name(1000), Some("alice"));
        assert_eq!(name(4242), None);
        // toor shares uid 0 with root, which comes first.
        assert_eq!(names.len(), 5);
        assert!(parse_passwd("").is_empty());
        assert!(parse_passwd("::0:0:::\n").is_empty());
        assert!(parse_passwd("\u{fffd}x:0\n").is_empty());
    }

    #[test]
    fn cache_rereads_a_changed_file() {
        let path = std::env::temp_dir().join(format!("ebpf-core-passwd-{}", std::process::id()));
        std::fs::write(&path, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let mut names = UserNames::from_file(&path);
        assert_eq!(names.name(0).as_deref(), Some("root"));
        assert_eq!(names.name(1000), None);
        std::fs::write(&path, "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n").unwrap();
        // Make sure the modification time differs even on coarse-grained filesystems.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert_eq!(names.name(1000).as_deref(), Some("bob"));
        std::fs::remove_file(&path).unwrap();
        // Known names stay cached once the file is gone.
        assert_eq!(names.name(0).as_deref(), Some("root"));
        assert_eq!(UserNames::from_file("/nonexistent/passwd").name(0), None);
    }
}
