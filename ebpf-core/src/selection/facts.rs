//! What selection rules look at, read from /proc.

use std::fs;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub pid: u32,
    pub exe_path: String,
    /// Arguments joined by single spaces.
    pub command_line: String,
    pub in_container: bool,
    pub otel_instrumented: bool,
}

/// Environment variables through which OpenTelemetry SDKs and agents are configured
/// to export on their own.
const OTEL_EXPORT_VARS: &[&str] =
    &["OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_TRACES_EXPORTER="];

/// Markers of auto-instrumentation agents in the environment or command line.
const OTEL_AGENT_MARKERS: &[&str] =
    &["opentelemetry-javaagent", "@opentelemetry/auto-instrumentations-node", "opentelemetry-instrument"];

impl ProcessFacts {
    /// Reads /proc/<pid>; a process gone meanwhile yields empty facts.
    pub fn read(pid: u32, check_otel: bool) -> Self {
        let exe_path = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().trim_end_matches(" (deleted)").to_string())
            .unwrap_or_default();
        let command_line = fs::read(format!("/proc/{pid}/cmdline")).map(|b| join_args(&b)).unwrap_or_default();
        let in_container = other_namespace(pid, "pid") || other_namespace(pid, "mnt");
        let otel_instrumented = check_otel && otel_instrumented(pid, &command_line);
        Self { pid, exe_path, command_line, in_container, otel_instrumented }
    }
}

fn join_args(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.split('\0').filter(|a| !a.is_empty()).collect::<Vec<_>>().join(" ")
}

fn other_namespace(pid: u32, ns: &str) -> bool {
    match (fs::read_link(format!("/proc/{pid}/ns/{ns}")), fs::read_link(format!("/proc/1/ns/{ns}"))) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

fn otel_instrumented(pid: u32, command_line: &str) -> bool {
    if OTEL_AGENT_MARKERS.iter().any(|m| command_line.contains(m)) {
        return true;
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let exports_itself = environ.split(|&b| b == 0).any(|var| {
        let var = String::from_utf8_lossy(var);
        OTEL_EXPORT_VARS.iter().any(|p| var.starts_with(p) && !var.ends_with("=none"))
            || OTEL_AGENT_MARKERS.iter().any(|m| var.contains(m))
    });
    exports_itself
        // Native SDKs and agents (C++, .NET auto-instrumentation) show up as mapped libraries.
        || fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|maps| maps.contains("opentelemetry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_arguments() {
        assert_eq!(join_args(b"python3\0-m\0http.server\0"), "python3 -m http.server");
        assert_eq!(join_args(b""), "");
    }

    #[test]
    fn reads_own_process() {
        let me = ProcessFacts::read(std::process::id(), true);
        assert_eq!(me.exe_path, std::env::current_exe().unwrap().to_string_lossy());
        assert!(!me.command_line.is_empty());
        assert!(!other_namespace(1, "pid"));
    }
}
