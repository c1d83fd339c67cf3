//! Turns the selection config into kernel modes and per-process decisions.

use std::collections::HashSet;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::config::{Criteria, SelectionConfig};
use super::facts::ProcessFacts;

/// How the kernel filters processes (values of `OE_PIDS_*` in events.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidMode {
    /// No process rule: no per-event lookup at all.
    All,
    /// Trace all but the processes decided `false`.
    Exclude,
    /// Trace only the processes decided `true`.
    Include,
}

/// How the kernel filters connections by port (values of `OE_PORTS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    All,
    Exclude,
    Include,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid glob {glob:?} in selection.{field}: {source}")]
pub struct SelectorError {
    field: &'static str,
    glob: String,
    #[source]
    source: globset::Error,
}

#[derive(Debug)]
struct Rules {
    pids: HashSet<u32>,
    exe_paths: GlobSet,
    command_lines: GlobSet,
}

impl Rules {
    /// `fields`: config names of the exe and command-line lists, for errors.
    fn new(c: &Criteria, fields: [&'static str; 2]) -> Result<Self, SelectorError> {
        Ok(Self {
            pids: c.pids.iter().copied().collect(),
            exe_paths: globs(&c.exe_paths, fields[0])?,
            command_lines: globs(&c.command_lines, fields[1])?,
        })
    }

    fn matches(&self, f: &ProcessFacts) -> bool {
        self.pids.contains(&f.pid)
            || (!f.exe_path.is_empty() && self.exe_paths.is_match(&f.exe_path))
            || (!f.command_line.is_empty() && self.command_lines.is_match(&f.command_line))
    }
}

fn globs(patterns: &[String], field: &'static str) -> Result<GlobSet, SelectorError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // `*` crosses `/` here: users write `*/nginx` for "nginx anywhere".
        let glob = Glob::new(p).map_err(|source| SelectorError { field, glob: p.clone(), source })?;
        b.add(glob);
    }
    b.build().map_err(|source| SelectorError { field, glob: patterns.join(","), source })
}

#[derive(Debug)]
pub struct Selector {
    include: Rules,
    exclude: Rules,
    has_include_rules: bool,
    containers_only: bool,
    exclude_otel: bool,
    include_ports: Vec<u16>,
    exclude_ports: Vec<u16>,
}

impl Selector {
    pub fn new(c: &SelectionConfig) -> Result<Self, SelectorError> {
        Ok(Self {
            include: Rules::new(&c.include, ["include.exe_paths", "include.command_lines"])?,
            exclude: Rules::new(&c.exclude, ["exclude.exe_paths", "exclude.command_lines"])?,
            has_include_rules: c.include.has_process_rules(),
            containers_only: c.containers_only,
            exclude_otel: c.exclude_otel_instrumented,
            include_ports: c.include.ports.clone(),
            exclude_ports: c.exclude.ports.clone(),
        })
    }

    pub fn pid_mode(&self) -> PidMode {
        if self.has_include_rules || self.containers_only {
            PidMode::Include
        } else if self.exclude.pids.is_empty()
            && self.exclude.exe_paths.is_empty()
            && self.exclude.command_lines.is_empty()
            && !self.exclude_otel
        {
            PidMode::All
        } else {
            PidMode::Exclude
        }
    }

    pub fn port_mode(&self) -> PortMode {
        if !self.include_ports.is_empty() {
            PortMode::Include
        } else if !self.exclude_ports.is_empty() {
            PortMode::Exclude
        } else {
            PortMode::All
        }
    }

    /// (port, traced) entries for the kernel's port table; exclusions win.
    pub fn port_decisions(&self) -> Vec<(u16, bool)> {
        let mut out: Vec<(u16, bool)> = self.include_ports.iter().map(|&p| (p, true)).collect();
        out.extend(self.exclude_ports.iter().map(|&p| (p, false)));
        out
    }

    /// Whether /proc facts must include the OpenTelemetry-SDK check.
    pub fn needs_otel_check(&self) -> bool {
        self.exclude_otel
    }

    /// Should this process be traced?
    pub fn decide(&self, f: &ProcessFacts) -> bool {
        let included =
            (!self.has_include_rules || self.include.matches(f)) && (!self.containers_only || f.in_container);
        let excluded = self.exclude.matches(f) || (self.exclude_otel && f.otel_instrumented);
        included && !excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pid: u32, exe: &str, cmd: &str) -> ProcessFacts {
        ProcessFacts { pid, exe_path: exe.into(), command_line: cmd.into(), ..Default::default() }
    }

    fn selector(json: &str) -> Selector {
        Selector::new(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn default_traces_everything_without_lookups() {
        let s = selector("{}");
        assert_eq!(s.pid_mode(), PidMode::All);
        assert_eq!(s.port_mode(), PortMode::All);
        assert!(s.decide(&facts(1, "/usr/sbin/nginx", "nginx")));
    }

    #[test]
    fn include_by_exe_glob_and_command_line() {
        let s = selector(r#"{"include": {"exe_paths": ["*/nginx"], "command_lines": ["*gunicorn*"]}}"#);
        assert_eq!(s.pid_mode(), PidMode::Include);
        assert!(s.decide(&facts(1, "/usr/sbin/nginx", "nginx: worker process")));
        assert!(s.decide(&facts(2, "/usr/bin/python3.11", "/usr/bin/python3 /venv/bin/gunicorn app:app")));
        assert!(!s.decide(&facts(3, "/usr/bin/curl", "curl http://x")));
    }

    #[test]
    fn exclusion_wins_and_sets_exclude_mode() {
        let s = selector(r#"{"exclude": {"pids": [7], "exe_paths": ["/usr/bin/curl"]}}"#);
        assert_eq!(s.pid_mode(), PidMode::Exclude);
        assert!(!s.decide(&facts(7, "/bin/x", "")));
        assert!(!s.decide(&facts(8, "/usr/bin/curl", "curl")));
        assert!(s.decide(&facts(9, "/usr/sbin/nginx", "nginx")));
        let s = selector(r#"{"include": {"pids": [7, 8]}, "exclude": {"pids": [8]}}"#);
        assert!(s.decide(&facts(7, "", "")));
        assert!(!s.decide(&facts(8, "", "")));
        assert!(!s.decide(&facts(9, "", "")));
    }

    #[test]
    fn containers_only_and_otel_instrumented() {
        let s = selector(r#"{"containers_only": true, "exclude_otel_instrumented": true}"#);
        assert_eq!(s.pid_mode(), PidMode::Include);
        let mut f = facts(1, "/app", "app");
        assert!(!s.decide(&f));
        f.in_container = true;
        assert!(s.decide(&f));
        f.otel_instrumented = true;
        assert!(!s.decide(&f));
    }

    #[test]
    fn ports() {
        let s = selector(r#"{"include": {"ports": [8080, 9090]}, "exclude": {"ports": [9090]}}"#);
        assert_eq!(s.port_mode(), PortMode::Include);
        assert_eq!(s.pid_mode(), PidMode::All, "ports alone need no process lookups");
        assert_eq!(s.port_decisions(), vec![(8080, true), (9090, true), (9090, false)]);
        assert_eq!(selector(r#"{"exclude": {"ports": [22]}}"#).port_mode(), PortMode::Exclude);
    }

    #[test]
    fn bad_glob_is_named() {
        let err = Selector::new(&serde_json::from_str(r#"{"include": {"exe_paths": ["[abc"]}}"#).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("include.exe_paths") && err.contains("[abc"), "{err}");
    }
}
