//! Process identity from /proc, with the kernel's task name as a fallback for
//! processes that are gone before userspace looks (a quick curl).

use std::fs;

use super::cgroup::{self, ContainerIds};
use super::config::IdentityConfig;
use super::environ::{self, ServiceAttributes};
use super::host::HostInfo;
use super::instance_id::generated_instance_id;
use super::mountinfo;
use super::owner::UserNames;
use super::procfs::{self, read_capped, CMDLINE_LIMIT, SMALL_FILE_LIMIT};

/// Who a traced process is; becomes the OTLP resource of its telemetry
/// (`otlp::process_resource`). Every field but `pid`, `service_name` and
/// `executable_name` is `None` when it could not be read (process gone, no
/// permission, not in a container) or was not asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// `process.pid`, in the initial pid namespace.
    pub pid: u32,
    /// `service.name`: `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else the executable name.
    pub service_name: String,
    /// `process.executable.name`: the base name of /proc/<pid>/exe, else the
    /// kernel's task name (comm, at most 15 bytes).
    pub executable_name: String,
    /// `process.executable.path`: /proc/<pid>/exe.
    pub executable_path: Option<String>,
    /// `service.namespace` from `OTEL_RESOURCE_ATTRIBUTES`.
    pub service_namespace: Option<String>,
    /// `service.instance.id` from `OTEL_RESOURCE_ATTRIBUTES`. When the process
    /// sets none, `instance_id()` generates one.
    pub service_instance_id: Option<String>,
    /// `process.parent_pid`, from /proc/<pid>/stat.
    pub parent_pid: Option<u32>,
    /// When the process started: clock ticks after boot (/proc/<pid>/stat
    /// field 22). Not exported itself; it makes generated instance ids unique.
    pub start_time_ticks: Option<u64>,
    /// `process.owner`: the user name of the effective uid.
    pub owner: Option<String>,
    /// `process.command_line`; only read when `IdentityConfig::command_line`.
    pub command_line: Option<String>,
    /// `container.id`, from /proc/<pid>/cgroup, else /proc/<pid>/mountinfo.
    pub container_id: Option<String>,
    /// `k8s.pod.uid`, from the same files.
    pub k8s_pod_uid: Option<String>,
}

impl ProcessIdentity {
    /// Reads /proc/<pid>; `comm` (from the kernel event) names a process already gone.
    /// With the default `IdentityConfig` (no command line).
    pub fn read(pid: u32, comm: &str) -> Self {
        Self::try_read_with(pid, comm, &IdentityConfig::default(), &mut Lookups::default())
            .unwrap_or_else(|| Self::from_comm(pid, comm))
    }

    /// Reads each /proc/<pid> file once, each capped in size. A file that
    /// cannot be read (the process exited meanwhile, a kernel thread, no
    /// permission) leaves its fields empty. None when the process is gone
    /// (or was never in this /proc).
    pub(super) fn try_read_with(pid: u32, comm: &str, config: &IdentityConfig, lookups: &mut Lookups) -> Option<Self> {
        let proc_dir = format!("/proc/{pid}");
        let stat = read_capped(format!("{proc_dir}/stat"), SMALL_FILE_LIMIT).ok()?;
        let stat = procfs::parse_stat(&stat);
        let executable_path = fs::read_link(format!("{proc_dir}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().trim_end_matches(" (deleted)").to_string())
            .filter(|p| !p.is_empty());
        // A zombie (exited, not yet reaped) still has a stat but no exe and an
        // empty environment: what the kernel's event says is better than that.
        executable_path.as_ref()?;
        let executable_name = executable_path
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| (!comm.is_empty()).then(|| comm.to_string()))
            .or_else(|| {
                let comm = read_capped(format!("{proc_dir}/comm"), SMALL_FILE_LIMIT).ok()?;
                Some(String::from_utf8_lossy(&comm).trim().to_string()).filter(|c| !c.is_empty())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let ServiceAttributes { name, namespace, instance_id } =
            environ::read_service_attributes(format!("{proc_dir}/environ"));
        let owner = read_capped(format!("{proc_dir}/status"), SMALL_FILE_LIMIT)
            .ok()
            .and_then(|status| procfs::effective_uid(&status))
            .and_then(|uid| lookups.users.name(uid));
        let command_line = if config.command_line {
            read_capped(format!("{proc_dir}/cmdline"), CMDLINE_LIMIT).ok().and_then(|c| procfs::command_line(&c))
        } else {
            None
        };
        let containers = read_container_ids(&proc_dir, &mut lookups.mounts);
        Some(Self {
            pid,
            service_name: name.unwrap_or_else(|| executable_name.clone()),
            executable_name,
            executable_path,
            service_namespace: namespace,
            service_instance_id: instance_id,
            parent_pid: stat.map(|s| s.parent_pid),
            start_time_ticks: stat.map(|s| s.start_time_ticks),
            owner,
            command_line,
            container_id: containers.container_id,
            k8s_pod_uid: containers.pod_uid,
        })
    }

    /// This process as it was before an exec into the image /proc shows
    /// now: what belongs to the process (pid, parent, start, owner,
    /// container) stays; what belongs to the image (executable, command
    /// line, the environment's service attributes) is gone with it, so only
    /// the kernel's name for the old executable is left.
    pub(super) fn before_exec(self, exe: &str) -> Self {
        Self {
            service_name: exe.to_string(),
            executable_name: exe.to_string(),
            executable_path: None,
            service_namespace: None,
            service_instance_id: None,
            command_line: None,
            ..self
        }
    }

    /// Identity from the kernel's task name alone.
    pub fn from_comm(pid: u32, comm: &str) -> Self {
        let name = if comm.is_empty() { "unknown" } else { comm };
        Self { pid, service_name: name.to_string(), executable_name: name.to_string(), ..Self::default() }
    }

    /// `service.instance.id`: the one the process sets, else one generated
    /// from this host, the pid and the process's start time (see
    /// `process::instance_id`), else (start time unknown: the process was gone
    /// before it was read, or events are replayed) none, since the process
    /// could not be told apart from an earlier or later one with its pid.
    pub fn instance_id(&self, host: &HostInfo) -> Option<String> {
        self.service_instance_id.clone().or_else(|| Some(generated_instance_id(host, self.pid, self.start_time_ticks?)))
    }
}

/// What is shared between the reads of many processes.
#[derive(Debug, Default)]
pub(super) struct Lookups {
    pub users: UserNames,
    pub mounts: mountinfo::ByNamespace,
}

/// The cgroup names the container; the mount table is the fallback for a
/// container in its own cgroup namespace (`0::/`). Read only when needed.
fn read_container_ids(proc_dir: &str, mounts: &mut mountinfo::ByNamespace) -> ContainerIds {
    let from_cgroup = read_capped(format!("{proc_dir}/cgroup"), SMALL_FILE_LIMIT)
        .map(|c| cgroup::from_cgroup_file(&String::from_utf8_lossy(&c)))
        .unwrap_or_default();
    if from_cgroup.container_id.is_some() {
        return from_cgroup;
    }
    from_cgroup.or(mounts.read(proc_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_user_name() -> Option<String> {
        let out = std::process::Command::new("id").arg("-un").output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    #[test]
    fn reads_own_process() {
        let me = ProcessIdentity::read(std::process::id(), "");
        assert_eq!(me.pid, std::process::id());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.executable_name, exe.file_name().unwrap().to_string_lossy());
        assert_eq!(me.executable_path.as_deref(), Some(exe.to_string_lossy().as_ref()));
        assert_eq!(me.parent_pid, Some(std::os::unix::process::parent_id()));
        assert!(me.start_time_ticks.is_some());
        // The default configuration never reads the command line.
        assert_eq!(me.command_line, None);
        // The owner is the current user, when /etc/passwd knows them.
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let expected = current_user_name().filter(|n| passwd.lines().any(|l| l.starts_with(&format!("{n}:"))));
        if expected.is_some() {
            assert_eq!(me.owner, expected);
        }
    }

    #[test]
    fn reads_own_command_line_when_asked() {
        let config = IdentityConfig { command_line: true };
        let me = ProcessIdentity::try_read_with(std::process::id(), "", &config, &mut Lookups::default()).unwrap();
        let expected = std::env::args().collect::<Vec<_>>().join(" ");
        assert_eq!(me.command_line.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn own_container_matches_own_cgroup() {
        let me = ProcessIdentity::read(std::process::id(), "");
        let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let expected = cgroup::from_cgroup_file(&cgroup);
        let expected =
            if expected.container_id.is_some() { expected } else { expected.or(mountinfo::from_mountinfo(&mounts)) };
        assert_eq!(me.container_id, expected.container_id);
        assert_eq!(me.k8s_pod_uid, expected.pod_uid);
    }

    #[test]
    fn gone_process_falls_back_to_comm() {
        let id = ProcessIdentity::read(u32::MAX - 1, "curl");
        assert_eq!(id, ProcessIdentity::from_comm(u32::MAX - 1, "curl"));
        assert_eq!(id.executable_name, "curl");
        assert_eq!(id.service_name, "curl");
        assert_eq!(id.instance_id(&HostInfo::default()), None);
        assert_eq!(ProcessIdentity::from_comm(1, "").service_name, "unknown");
    }

    #[test]
    fn reads_service_attributes_of_a_child() {
        // The environment a process was started with, as /proc shows it.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("OTEL_SERVICE_NAME", "checkout")
            .env("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,service.namespace=shop%20floor,x=1")
            .spawn()
            .unwrap();
        // spawn returns once exec is past the point of no return, a moment
        // before the kernel has laid out the new environment.
        let environ = format!("/proc/{}/environ", child.id());
        for _ in 0..200 {
            if !fs::read(&environ).unwrap_or_default().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let id = ProcessIdentity::read(child.id(), "sleep");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(id.service_name, "checkout");
        assert_eq!(id.service_namespace.as_deref(), Some("shop floor"));
        assert_eq!(id.service_instance_id, None);
        assert_eq!(id.parent_pid, Some(std::process::id()));
        assert_eq!(id.executable_name, "sleep");
    }

    #[test]
    fn instance_id_explicit_or_generated() {
        let host = HostInfo { host_name: "h".into(), host_id: None, boot_id: Some("b".into()) };
        let mut p = ProcessIdentity { pid: 7, start_time_ticks: Some(99), ..ProcessIdentity::from_comm(7, "x") };
        assert_eq!(p.instance_id(&host), Some(generated_instance_id(&host, 7, 99)));
        p.service_instance_id = Some("given".into());
        assert_eq!(p.instance_id(&host).as_deref(), Some("given"));
    }
}
