//! Selection settings.

use serde::Deserialize;

/// One side of the selection: what to include, or what to exclude.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Criteria {
    /// Process ids.
    pub pids: Vec<u32>,
    /// Globs on the executable's absolute path, e.g. `/usr/sbin/nginx`, `*/python3*`.
    pub exe_paths: Vec<String>,
    /// Globs on the command line, arguments joined by single spaces, e.g. `*gunicorn*`.
    pub command_lines: Vec<String>,
    /// TCP ports of the server side of a connection (the listening port).
    pub ports: Vec<u16>,
}

impl Criteria {
    pub(crate) fn has_process_rules(&self) -> bool {
        !self.pids.is_empty() || !self.exe_paths.is_empty() || !self.command_lines.is_empty()
    }
}

/// Defaults trace every process but the one hosting the receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    /// When any process rule is set, only matching processes are traced;
    /// `ports` restricts traced connections the same way.
    pub include: Criteria,
    /// Never traced, even when included.
    pub exclude: Criteria,
    /// Trace only processes running in a container (another pid or mount namespace than the host's).
    pub containers_only: bool,
    /// Skip processes already instrumented with an OpenTelemetry SDK or agent
    /// (detected from their environment, command line and mapped libraries).
    pub exclude_otel_instrumented: bool,
}
