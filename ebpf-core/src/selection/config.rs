//! Selection settings.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Problems;

/// Most pids in one list (`include.pids`, `exclude.pids`): the kernel's
/// bitmap takes any pid, but a longer list is a mistake, not a selection.
const MAX_PIDS: usize = 65_536;
/// Most globs in one list (`exe_paths`, `command_lines`): 10,000 compile
/// in ~0.1 s; 100,000 took 6 s and 86 MiB, millions minutes and GiBs.
const MAX_GLOBS: usize = 10_000;
/// Most bytes of globs in one list (256 KiB): heavy wildcards cost the
/// glob compiler far more than their count says (one 4 MB `*x*x…` glob
/// took 4 s and 2 GiB); at this size the worst took 0.3 s and ~150 MiB.
const MAX_GLOB_BYTES: usize = 256 * 1024;
/// Most distinct ports in `include.ports` and `exclude.ports` together:
/// the size of the kernel's `port_filter` table (1,024 entries), which
/// holds every one of them.
const MAX_PORTS: usize = 1024;

/// One side of the selection: what to include, or what to exclude.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Criteria {
    /// Process ids.
    #[schemars(length(max = MAX_PIDS), inner(range(min = 1)))]
    pub pids: Vec<u32>,
    /// Globs on the executable's absolute path, e.g. `/usr/sbin/nginx`,
    /// `*/python3*` (at most 256 KiB of globs).
    #[schemars(length(max = MAX_GLOBS))]
    pub exe_paths: Vec<String>,
    /// Globs on the command line, arguments joined by single spaces, e.g.
    /// `*gunicorn*` (at most 256 KiB of globs).
    #[schemars(length(max = MAX_GLOBS))]
    pub command_lines: Vec<String>,
    /// TCP ports of the server side of a connection (the listening port); at
    /// most 1,024 distinct ones in `include` and `exclude` together (the
    /// kernel's port table).
    #[schemars(inner(range(min = 1)))]
    pub ports: Vec<u16>,
}

impl Criteria {
    pub(crate) fn has_process_rules(&self) -> bool {
        !self.pids.is_empty() || !self.exe_paths.is_empty() || !self.command_lines.is_empty()
    }
}

/// Defaults trace every process but the one hosting the receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    /// When any process rule is set, only matching processes are traced;
    /// `ports` restricts traced connections the same way.
    pub include: Criteria,
    /// Never traced, even when included.
    pub exclude: Criteria,
    /// Trace only processes running in a container (another pid or mount
    /// namespace than the host's).
    pub containers_only: bool,
    /// Skip processes already instrumented with an OpenTelemetry SDK or agent
    /// (detected from their environment, command line and mapped libraries).
    pub exclude_otel_instrumented: bool,
}

impl SelectionConfig {
    /// What the schema cannot say: bytes of globs per list, distinct ports
    /// across both sides, and globs that compile. Sizes first: compiling
    /// 100,000 globs takes seconds, millions minutes.
    pub(crate) fn check(&self, problems: &mut Problems) {
        for (side, c) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (name, globs) in [("exe_paths", &c.exe_paths), ("command_lines", &c.command_lines)] {
                let bytes: usize = globs.iter().map(String::len).sum();
                if bytes > MAX_GLOB_BYTES {
                    problems.push(
                        format!("selection.{side}.{name}"),
                        format!(
                            "holds {bytes} bytes of globs: at most {MAX_GLOB_BYTES} are allowed \
                             (compiling them costs time and memory)"
                        ),
                    );
                }
            }
        }
        let ports: HashSet<u16> = self.include.ports.iter().chain(&self.exclude.ports).copied().collect();
        if ports.len() > MAX_PORTS {
            problems.push(
                "selection.include.ports",
                format!(
                    "{} distinct ports in selection.include.ports and selection.exclude.ports: at most \
                     {MAX_PORTS} are allowed (the size of the kernel's port table)",
                    ports.len()
                ),
            );
        }
        if problems.touch("selection") {
            return;
        }
        if let Err(e) = super::Selector::new(self) {
            problems.push(format!("selection.{}", e.field()), e.to_string());
        }
    }
}
