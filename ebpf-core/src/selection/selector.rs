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
pub enum SelectorError {
    #[error("invalid glob {glob:?} in selection.{field}: {source}")]
    Glob {
        field: &'static str,
        glob: String,
        #[source]
        source: globset::Error,
    },
    /// Globs that are valid one by one but too complex together.
    #[error("invalid config: selection.{field}: its {count} globs could not be compiled together: {source}")]
    GlobSet {
        field: &'static str,
        count: usize,
        #[source]
        source: globset::Error,
    },
    /// A list longer than its limit (see [`Criteria`]'s `MAX_*` constants).
    #[error("invalid config: selection.{field} has {count} entries: at most {limit} are allowed ({why})")]
    TooMany { field: &'static str, count: usize, limit: usize, why: &'static str },
    #[error(
        "invalid config: selection.{field} holds {bytes} bytes of globs: at most {limit} are allowed \
         (compiling them costs time and memory)"
    )]
    GlobBytes { field: &'static str, bytes: usize, limit: usize },
    #[error(
        "invalid config: selection.include.ports and selection.exclude.ports have {count} distinct ports: \
         at most {limit} are allowed (the size of the kernel's port table)"
    )]
    TooManyPorts { count: usize, limit: usize },
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

/// Every list within its limit: at most [`Criteria::MAX_PIDS`] pids and
/// [`Criteria::MAX_GLOBS`] globs (of [`Criteria::MAX_GLOB_BYTES`] in all)
/// per list, and [`Criteria::MAX_PORTS`]
/// distinct ports in `include.ports` and `exclude.ports` together.
fn check_limits(c: &SelectionConfig) -> Result<(), SelectorError> {
    let too_many = |field, count, limit, why| Err(SelectorError::TooMany { field, count, limit, why });
    for (side, fields) in [
        (&c.include, ["include.pids", "include.exe_paths", "include.command_lines"]),
        (&c.exclude, ["exclude.pids", "exclude.exe_paths", "exclude.command_lines"]),
    ] {
        if side.pids.len() > Criteria::MAX_PIDS {
            return too_many(
                fields[0],
                side.pids.len(),
                Criteria::MAX_PIDS,
                "no more than the kernel's pid table holds",
            );
        }
        for (field, globs) in [(fields[1], &side.exe_paths), (fields[2], &side.command_lines)] {
            if globs.len() > Criteria::MAX_GLOBS {
                return too_many(field, globs.len(), Criteria::MAX_GLOBS, "globs are compiled into one matcher");
            }
            let bytes = globs.iter().map(String::len).sum();
            if bytes > Criteria::MAX_GLOB_BYTES {
                return Err(SelectorError::GlobBytes { field, bytes, limit: Criteria::MAX_GLOB_BYTES });
            }
        }
    }
    let ports: HashSet<u16> = c.include.ports.iter().chain(&c.exclude.ports).copied().collect();
    if ports.len() > Criteria::MAX_PORTS {
        return Err(SelectorError::TooManyPorts { count: ports.len(), limit: Criteria::MAX_PORTS });
    }
    Ok(())
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
        // Sizes first: compiling 100,000 globs takes seconds, millions minutes.
        check_limits(c)?;
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

    fn criteria_error(json: &str) -> Option<String> {
        Selector::new(&serde_json::from_str(json).unwrap()).err().map(|e| e.to_string())
    }

    fn list<T: ToString>(items: impl Iterator<Item = T>, quote: bool) -> String {
        let q = if quote { "\"" } else { "" };
        items.map(|i| format!("{q}{}{q}", i.to_string())).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn pid_lists_are_capped() {
        for side in ["include", "exclude"] {
            let at = format!(r#"{{"{side}": {{"pids": [{}]}}}}"#, list(1..=Criteria::MAX_PIDS as u32, false));
            assert_eq!(criteria_error(&at), None, "{side}: exactly at the limit");
            let over = format!(r#"{{"{side}": {{"pids": [{}]}}}}"#, list(1..=Criteria::MAX_PIDS as u32 + 1, false));
            let err = criteria_error(&over).expect("one over the limit");
            assert!(err.contains(&format!("selection.{side}.pids has 65537 entries: at most 65536")), "{err}");
        }
    }

    #[test]
    fn glob_lists_are_capped() {
        for side in ["include", "exclude"] {
            for key in ["exe_paths", "command_lines"] {
                let globs = |n| list((0..n).map(|i| format!("/usr/bin/app{i}*")), true);
                let at = format!(r#"{{"{side}": {{"{key}": [{}]}}}}"#, globs(Criteria::MAX_GLOBS));
                assert_eq!(criteria_error(&at), None, "{side}.{key}: exactly at the limit");
                let over = format!(r#"{{"{side}": {{"{key}": [{}]}}}}"#, globs(Criteria::MAX_GLOBS + 1));
                let err = criteria_error(&over).expect("one over the limit");
                assert!(err.contains(&format!("selection.{side}.{key} has 10001 entries: at most 10000")), "{err}");
            }
        }
    }

    #[test]
    fn glob_bytes_are_capped_per_list() {
        // 64 globs of 4 KiB: exactly 256 KiB, then one byte more.
        let glob = |i: usize, extra: usize| format!("/{}{i:04}", "a".repeat(4096 - 5 + extra));
        let at = list((0..64).map(|i| glob(i, 0)), true);
        assert_eq!(criteria_error(&format!(r#"{{"exclude": {{"exe_paths": [{at}]}}}}"#)), None);
        let over = list((0..64).map(|i| glob(i, usize::from(i == 63))), true);
        let err = criteria_error(&format!(r#"{{"exclude": {{"command_lines": [{over}]}}}}"#)).expect("one byte over");
        assert!(err.contains("selection.exclude.command_lines holds 262145 bytes of globs: at most 262144"), "{err}");
    }

    #[test]
    fn globs_too_complex_together_are_named_without_quoting_them_all() {
        // Within every limit, but past the glob compiler's own size limit.
        let globs = list((0..100).map(|i| format!("{}{i}", "*x".repeat(1000))), true);
        let err = criteria_error(&format!(r#"{{"include": {{"command_lines": [{globs}]}}}}"#)).expect("too complex");
        assert!(err.starts_with("invalid config: selection.include.command_lines: its 100 globs"), "{err}");
        assert!(err.len() < 1000, "{err}");
    }

    #[test]
    fn distinct_ports_are_capped_across_include_and_exclude() {
        let ports = |r: std::ops::Range<u32>| list(r, false);
        // 1,024 distinct: half included, half excluded, with repeats.
        let at = format!(
            r#"{{"include": {{"ports": [{},1]}}, "exclude": {{"ports": [{},1]}}}}"#,
            ports(1..513),
            ports(513..1025)
        );
        assert_eq!(criteria_error(&at), None, "exactly at the limit");
        let over = format!(
            r#"{{"include": {{"ports": [{}]}}, "exclude": {{"ports": [{}]}}}}"#,
            ports(1..513),
            ports(513..1026)
        );
        let err = criteria_error(&over).expect("one over the limit");
        assert!(err.contains("have 1025 distinct ports: at most 1024 are allowed"), "{err}");
    }
}
