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

/// Globs that do not compile; `field` is the list under `selection.`.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    #[error("invalid glob {glob:?}: {source}")]
    Glob {
        field: &'static str,
        glob: String,
        #[source]
        source: globset::Error,
    },
    /// Globs that are valid one by one but too complex together.
    #[error("its {count} globs could not be compiled together: {source}")]
    GlobSet {
        field: &'static str,
        count: usize,
        #[source]
        source: globset::Error,
    },
}

impl SelectorError {
    /// The list, under `selection.`: `include.exe_paths`.
    pub fn field(&self) -> &'static str {
        match self {
            SelectorError::Glob { field, .. } | SelectorError::GlobSet { field, .. } => field,
        }
    }
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
        let glob = Glob::new(p).map_err(|source| SelectorError::Glob { field, glob: p.clone(), source })?;
        b.add(glob);
    }
    b.build().map_err(|source| SelectorError::GlobSet { field, count: patterns.len(), source })
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
    /// `c` must be within the limits `Config::validate` checks: the glob
    /// lists are compiled as they are.
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
        let err = Selector::new(&serde_json::from_str(r#"{"include": {"exe_paths": ["[abc"]}}"#).unwrap()).unwrap_err();
        assert_eq!(err.field(), "include.exe_paths");
        assert!(err.to_string().contains("[abc"), "{err}");
    }

    fn list<T: ToString>(items: impl Iterator<Item = T>, quote: bool) -> String {
        let q = if quote { "\"" } else { "" };
        items.map(|i| format!("{q}{}{q}", i.to_string())).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn globs_too_complex_together_are_named_without_quoting_them_all() {
        // Within every limit, but past the glob compiler's own size limit.
        let globs = list((0..100).map(|i| format!("{}{i}", "*x".repeat(1000))), true);
        let json = format!(r#"{{"selection": {{"include": {{"command_lines": [{globs}]}}}}}}"#);
        let err = crate::Config::from_json(&json).expect_err("too complex").to_string();
        assert!(err.starts_with("invalid config: selection.include.command_lines: its 100 globs"), "{err}");
        assert!(err.len() < 1000, "{err}");
    }
}
