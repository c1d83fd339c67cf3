//! Who a traced process is: service, executable, owner, container, read once
//! from /proc and cached until the process exits (or execs).
//!
//! One concept per file: `identity` (what is known about a process and how
//! it is read), `table` (the cache), `config` (what may be collected),
//! `host` (this host), and the parsers: `procfs` (stat, status, cmdline),
//! `environ` (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), `owner`
//! (/etc/passwd), `cgroup` and `mountinfo` (container and pod),
//! `instance_id` (generated service.instance.id).

mod cgroup;
mod config;
#[cfg(test)]
mod container_fixtures;
mod environ;
mod host;
mod identity;
mod instance_id;
mod mountinfo;
mod owner;
mod procfs;
mod table;

pub use config::IdentityConfig;
pub use host::HostInfo;
pub use identity::ProcessIdentity;
pub use table::{ProcessTable, TaskHint};
