//! Process identity from /proc, with the kernel's task name as a fallback for
//! processes that are gone before userspace looks (a quick curl).

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the executable name.
    pub service_name: String,
    pub executable_name: String,
    pub executable_path: Option<String>,
}

impl ProcessIdentity {
    /// Reads /proc/<pid>; `comm` (from the kernel event) names a process already gone.
    pub fn read(pid: u32, comm: &str) -> Self {
        let exe_path = fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().trim_end_matches(" (deleted)").to_string());
        let executable_name = exe_path
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| (!comm.is_empty()).then(|| comm.to_string()))
            .or_else(|| fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "unknown".to_string());
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let service_name = service_name_from_environ(&environ).unwrap_or_else(|| executable_name.clone());
        Self { pid, service_name, executable_name, executable_path: exe_path }
    }
}

impl ProcessIdentity {
    /// Identity from the kernel's task name alone.
    pub fn from_comm(pid: u32, comm: &str) -> Self {
        let name = if comm.is_empty() { "unknown" } else { comm };
        Self { pid, service_name: name.to_string(), executable_name: name.to_string(), executable_path: None }
    }
}

/// The service name a process declares through the OpenTelemetry SDK variables.
fn service_name_from_environ(environ: &[u8]) -> Option<String> {
    let mut from_attributes = None;
    for var in environ.split(|&b| b == 0) {
        let var = String::from_utf8_lossy(var);
        if let Some(v) = var.strip_prefix("OTEL_SERVICE_NAME=") {
            if !v.trim().is_empty() {
                return Some(v.trim().to_string());
            }
        } else if let Some(attrs) = var.strip_prefix("OTEL_RESOURCE_ATTRIBUTES=") {
            from_attributes = attrs
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim() == "service.name")
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty());
        }
    }
    from_attributes
}

/// Identities by pid, dropped when the process exits.
#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: HashMap<u32, Arc<ProcessIdentity>>,
    /// Replaying recorded events: the pids are not this host's, never read /proc.
    offline: bool,
}

impl ProcessTable {
    pub fn offline() -> Self {
        Self { offline: true, ..Self::default() }
    }

    pub fn get_or_read(&mut self, pid: u32, comm: &str) -> Arc<ProcessIdentity> {
        let offline = self.offline;
        self.by_pid
            .entry(pid)
            .or_insert_with(|| {
                Arc::new(if offline { ProcessIdentity::from_comm(pid, comm) } else { ProcessIdentity::read(pid, comm) })
            })
            .clone()
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
    fn service_name_precedence() {
        assert_eq!(service_name_from_environ(b"A=1\0OTEL_SERVICE_NAME=checkout\0"), Some("checkout".into()));
        assert_eq!(
            service_name_from_environ(b"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.name=cart\0"),
            Some("cart".into())
        );
        assert_eq!(
            service_name_from_environ(b"OTEL_SERVICE_NAME=checkout\0OTEL_RESOURCE_ATTRIBUTES=service.name=cart\0"),
            Some("checkout".into())
        );
        assert_eq!(service_name_from_environ(b"OTEL_SERVICE_NAME=\0PATH=/bin\0"), None);
        assert_eq!(service_name_from_environ(b""), None);
    }

    #[test]
    fn reads_own_process() {
        let me = ProcessIdentity::read(std::process::id(), "");
        assert_eq!(me.pid, std::process::id());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.executable_name, exe.file_name().unwrap().to_string_lossy());
    }

    #[test]
    fn gone_process_falls_back_to_comm() {
        let id = ProcessIdentity::read(u32::MAX - 1, "curl");
        assert_eq!(id.executable_name, "curl");
        assert_eq!(id.service_name, "curl");
    }
}
