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
    /// Most pids in one list (`include.pids`, `exclude.pids`): the kernel's
    /// bitmap takes any pid, but a longer list is a mistake, not a selection.
    pub const MAX_PIDS: usize = 65_536;
    /// Most globs in one list (`exe_paths`, `command_lines`): 10,000 compile
    /// in ~0.1 s; 100,000 took 6 s and 86 MiB, millions minutes and GiBs.
    pub const MAX_GLOBS: usize = 10_000;
    /// Most bytes of globs in one list (256 KiB): heavy wildcards cost the
    /// glob compiler far more than their count says (one 4 MB `*x*x…` glob
    /// took 4 s and 2 GiB); at this size the worst took 0.3 s and ~150 MiB.
    pub const MAX_GLOB_BYTES: usize = 256 * 1024;
    /// Most distinct ports in `include.ports` and `exclude.ports` together:
    /// the size of the kernel's `port_filter` table (1,024 entries), which
    /// holds every one of them.
    pub const MAX_PORTS: usize = 1024;

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
