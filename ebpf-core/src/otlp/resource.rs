//! The OTLP resource describing a traced process.

use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::process::ProcessIdentity;
use crate::spans::{int_attr, str_attr};

/// Facts about this host, read once.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub host_name: String,
}

impl HostInfo {
    pub fn read() -> Self {
        let host_name =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
        Self { host_name }
    }
}

pub fn process_resource(p: &ProcessIdentity, host: &HostInfo) -> Resource {
    let mut attributes = vec![
        str_attr("service.name", p.service_name.as_str()),
        int_attr("process.pid", i64::from(p.pid)),
        str_attr("process.executable.name", p.executable_name.as_str()),
    ];
    if let Some(path) = &p.executable_path {
        attributes.push(str_attr("process.executable.path", path.as_str()));
    }
    if !host.host_name.is_empty() {
        attributes.push(str_attr("host.name", host.host_name.as_str()));
    }
    attributes.push(str_attr("telemetry.sdk.name", crate::SDK_NAME));
    attributes.push(str_attr("telemetry.sdk.language", "rust"));
    attributes.push(str_attr("telemetry.sdk.version", crate::VERSION));
    Resource { attributes, ..Default::default() }
}
