//! Identities by pid, read once per process and dropped when it exits.

use std::collections::HashMap;
use std::sync::Arc;

use super::config::IdentityConfig;
use super::identity::{Lookups, ProcessIdentity};

/// The cache of process identities.
///
/// An identity is read from /proc the first time a pid is seen and kept
/// until `remove` (process exit). `exec` replaces the executable, the
/// command line and the environment (hence the service name): on exec the
/// pipeline calls `remove(pid)` (or `refresh`) so that the next
/// `get_or_read` reads the new image.
#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: HashMap<u32, Arc<ProcessIdentity>>,
    /// Replaying recorded events: the pids are not this host's, never read /proc.
    offline: bool,
    config: IdentityConfig,
    /// uid → user name (/etc/passwd, read lazily) and mount namespace →
    /// container, shared by all processes.
    lookups: Lookups,
}

impl ProcessTable {
    pub fn new(config: IdentityConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// For recorded events: identities come from the events' task names
    /// alone; neither /proc nor /etc/passwd is ever read.
    pub fn offline() -> Self {
        Self { offline: true, ..Self::default() }
    }

    pub fn get_or_read(&mut self, pid: u32, comm: &str) -> Arc<ProcessIdentity> {
        if let Some(identity) = self.by_pid.get(&pid) {
            return identity.clone();
        }
        let identity = Arc::new(if self.offline {
            ProcessIdentity::from_comm(pid, comm)
        } else {
            ProcessIdentity::read_with(pid, comm, &self.config, &mut self.lookups)
        });
        self.by_pid.insert(pid, identity.clone());
        identity
    }

    /// Forgets `pid` and reads it again: for `exec`, which gives the process
    /// a new executable and environment under the same pid.
    pub fn refresh(&mut self, pid: u32, comm: &str) -> Arc<ProcessIdentity> {
        self.remove(pid);
        self.get_or_read(pid, comm)
    }

    pub fn remove(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_until_removed() {
        let mut table = ProcessTable::default();
        let me = std::process::id();
        let a = table.get_or_read(me, "");
        let b = table.get_or_read(me, "other");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(table.len(), 1);
        let c = table.refresh(me, "");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*a, *c);
        table.remove(me);
        assert!(table.is_empty());
    }

    #[test]
    fn offline_never_reads_proc() {
        let mut table = ProcessTable::offline();
        let me = table.get_or_read(std::process::id(), "python3");
        assert_eq!(*me, ProcessIdentity::from_comm(std::process::id(), "python3"));
    }

    #[test]
    fn command_line_only_when_configured() {
        let me = std::process::id();
        assert_eq!(ProcessTable::default().get_or_read(me, "").command_line, None);
        let with = ProcessTable::new(IdentityConfig { command_line: true }).get_or_read(me, "");
        assert!(with.command_line.is_some());
    }
}
