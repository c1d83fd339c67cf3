//! Identities by pid, read once per process and dropped when it exits.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

use super::config::IdentityConfig;
use super::identity::{Lookups, ProcessIdentity};

/// What the kernel reported about a task, from its connection event.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskHint<'a> {
    /// Task name (15 bytes at most).
    pub comm: &'a str,
    /// Executable file name; empty when unknown.
    pub exe: &'a str,
    pub parent_tgid: Option<u32>,
}

/// The cache of process identities.
///
/// An identity is read from /proc the first time a pid is seen and kept
/// until `remove` (process exit). `exec` replaces the executable, the
/// command line and the environment (hence the service name): on exec the
/// pipeline calls `remove(pid)` (or `refresh`) so that the next
/// `get_or_read` reads the new image.
#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: FxHashMap<u32, Arc<ProcessIdentity>>,
    /// Pids whose identity is a guess made with no name (a connection met
    /// mid-stream of a process gone from /proc): the next event that names
    /// the process replaces it.
    nameless: FxHashSet<u32>,
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
        self.get_or_read_hinted(pid, &TaskHint { comm, exe: "", parent_tgid: None })
    }

    /// As `get_or_read`, with what the kernel said about the task, for a
    /// process gone before /proc could be read.
    pub fn get_or_read_hinted(&mut self, pid: u32, hint: &TaskHint<'_>) -> Arc<ProcessIdentity> {
        if let Some(identity) = self.by_pid.get(&pid) {
            let named = !hint.comm.is_empty() || !hint.exe.is_empty();
            if !(named && self.nameless.remove(&pid)) {
                return identity.clone();
            }
        }
        let read = if self.offline {
            None
        } else {
            ProcessIdentity::try_read_with(pid, hint.comm, &self.config, &mut self.lookups)
        };
        let identity = match read {
            Some(read) if runs_another_image(&read, hint) => read.before_exec(hint.exe),
            Some(read) => read,
            None => self.identity_from_hint(pid, hint),
        };
        if hint.comm.is_empty() && hint.exe.is_empty() && identity.executable_path.is_none() {
            self.nameless.insert(pid);
        }
        let identity = Arc::new(identity);
        self.by_pid.insert(pid, identity.clone());
        identity
    }

    /// The identity of a gone process's parent: known, or read now. A
    /// forking server's parent often moves no data itself (its children
    /// answer on the sockets it accepted), so nothing read it before.
    fn parent(&mut self, ppid: u32) -> Option<Arc<ProcessIdentity>> {
        if let Some(parent) = self.by_pid.get(&ppid) {
            return Some(parent.clone());
        }
        if self.offline {
            return None;
        }
        let parent = Arc::new(ProcessIdentity::try_read_with(ppid, "", &self.config, &mut self.lookups)?);
        self.by_pid.insert(ppid, parent.clone());
        Some(parent)
    }

    /// A process already gone. A fork that did not exec ran its parent's
    /// executable with its parent's environment: it is its parent's service
    /// (a forking server's short-lived children). Otherwise the kernel's
    /// names are all there is; the executable's beats the 15-byte comm.
    fn identity_from_hint(&mut self, pid: u32, hint: &TaskHint<'_>) -> ProcessIdentity {
        let parent = hint.parent_tgid.filter(|&ppid| ppid != pid).and_then(|ppid| self.parent(ppid));
        if let Some(parent) = parent.filter(|p| !hint.exe.is_empty() && p.executable_name == hint.exe) {
            return ProcessIdentity {
                pid,
                parent_pid: Some(parent.pid),
                // Its own start time is unknown, so no id can be generated for it.
                start_time_ticks: None,
                service_instance_id: None,
                ..(*parent).clone()
            };
        }
        let name = if hint.exe.is_empty() { hint.comm } else { hint.exe };
        ProcessIdentity { parent_pid: hint.parent_tgid, ..ProcessIdentity::from_comm(pid, name) }
    }

    /// Forgets `pid` and reads it again: for `exec`, which gives the process
    /// a new executable and environment under the same pid.
    pub fn refresh(&mut self, pid: u32, comm: &str) -> Arc<ProcessIdentity> {
        self.remove(pid);
        self.get_or_read(pid, comm)
    }

    pub fn remove(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
        self.nameless.remove(&pid);
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

/// Whether /proc describes a later image than the event did: the worker
/// reads /proc when it gets to an event, and by then the process may have
/// exec()ed (a script that ends by exec'ing curl). The kernel's executable
/// name is its file's directory entry cut to 63 bytes (`exe[64]` in
/// events.h), perhaps inside a UTF-8 sequence.
fn runs_another_image(read: &ProcessIdentity, hint: &TaskHint<'_>) -> bool {
    let exe = hint.exe.trim_end_matches(char::REPLACEMENT_CHARACTER);
    !exe.is_empty() && !read.executable_name.starts_with(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_fork_inherits_its_parent() {
        let mut table = ProcessTable::default();
        let me = std::process::id();
        let parent = table.get_or_read(me, "");
        let gone = u32::MAX - 7;
        let exe = parent.executable_name.clone();
        let child = table.get_or_read_hinted(gone, &TaskHint { comm: "x", exe: &exe, parent_tgid: Some(me) });
        assert_eq!(child.pid, gone);
        assert_eq!(child.parent_pid, Some(me));
        assert_eq!(child.service_name, parent.service_name);
        assert_eq!(child.executable_path, parent.executable_path);
        assert_eq!(child.start_time_ticks, None);
    }

    #[test]
    fn gone_process_keeps_its_whole_executable_name() {
        let mut table = ProcessTable::default();
        let hint = TaskHint { comm: "curl-with-a-lon", exe: "curl-with-a-long-name", parent_tgid: Some(1) };
        let id = table.get_or_read_hinted(u32::MAX - 8, &hint);
        assert_eq!(id.executable_name, "curl-with-a-long-name");
        assert_eq!(id.service_name, "curl-with-a-long-name");
        assert_eq!(id.parent_pid, Some(1));
    }

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

    /// /proc read after the process exec()ed: the event's executable wins,
    /// and the process's own attributes stay.
    #[test]
    fn an_event_from_before_an_exec_keeps_the_old_executable() {
        let me = std::process::id();
        let now = ProcessTable::default().get_or_read(me, "");
        let mut table = ProcessTable::default();
        let hint = TaskHint { comm: "python3", exe: "python3.11", parent_tgid: None };
        let old = table.get_or_read_hinted(me, &hint);
        assert_eq!(old.executable_name, "python3.11");
        assert_eq!(old.service_name, "python3.11");
        assert_eq!(old.executable_path, None);
        assert_eq!((old.pid, old.parent_pid, old.start_time_ticks), (me, now.parent_pid, now.start_time_ticks));
        assert_eq!(old.owner, now.owner);
        // The name as the kernel cut it (63 bytes, maybe mid-character) is the same image.
        let exe = &now.executable_name;
        let cut = format!("{}\u{FFFD}", &exe[..exe.len() - 1]);
        let same = ProcessTable::default().get_or_read_hinted(me, &TaskHint { exe: &cut, ..hint });
        assert_eq!(*same, *now);
    }

    #[test]
    fn a_nameless_guess_gives_way_to_a_name() {
        let mut table = ProcessTable::default();
        let gone = u32::MAX - 9;
        let guess = table.get_or_read(gone, "");
        assert_eq!(guess.service_name, "unknown");
        assert!(Arc::ptr_eq(&guess, &table.get_or_read(gone, "")));
        assert_eq!(table.get_or_read(gone, "curl").service_name, "curl");
        assert_eq!(table.get_or_read(gone, "").service_name, "curl");
        assert_eq!(table.get_or_read(gone, "other").service_name, "curl");
        assert_eq!(table.len(), 1);
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
