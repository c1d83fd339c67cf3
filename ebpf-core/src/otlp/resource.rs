//! The OTLP resource describing a traced process.
//!
//! Attributes (semantic conventions; each only when known):
//! `service.name`, `service.namespace`, `service.instance.id`, `process.pid`,
//! `process.parent_pid`, `process.executable.name`,
//! `process.executable.path`, `process.command_line` (opt-in),
//! `process.owner`, `host.name`, `host.id`, `container.id`, `k8s.pod.uid`,
//! and `telemetry.sdk.{name,language,version}`.

use opentelemetry_proto::tonic::resource::v1::Resource;

use super::wire::{AttrEncoder, AttrSink};
use crate::process::ProcessIdentity;

/// Facts about this host, read once (`HostInfo::read()`).
pub use crate::process::HostInfo;

pub fn process_resource(p: &ProcessIdentity, host: &HostInfo) -> Resource {
    let mut attributes = Vec::with_capacity(16);
    resource_attributes(p, host, &mut attributes);
    Resource { attributes, ..Default::default() }
}

/// `process_resource(p, host)` encoded straight into `buf` (its fields: the
/// bytes `prost` writes for it); `scratch` holds formatted values.
pub fn write_process_resource(p: &ProcessIdentity, host: &HostInfo, buf: &mut Vec<u8>, scratch: &mut String) {
    resource_attributes(p, host, &mut AttrEncoder::new(buf, 1, scratch));
}

fn resource_attributes(p: &ProcessIdentity, host: &HostInfo, attributes: &mut impl AttrSink) {
    attributes.str("service.name", p.service_name.as_str());
    opt_str(attributes, "service.namespace", p.service_namespace.as_deref());
    opt_str(attributes, "service.instance.id", p.instance_id(host).as_deref());
    attributes.int("process.pid", i64::from(p.pid));
    if let Some(ppid) = p.parent_pid {
        attributes.int("process.parent_pid", i64::from(ppid));
    }
    attributes.str("process.executable.name", p.executable_name.as_str());
    opt_str(attributes, "process.executable.path", p.executable_path.as_deref());
    opt_str(attributes, "process.command_line", p.command_line.as_deref());
    opt_str(attributes, "process.owner", p.owner.as_deref());
    opt_str(attributes, "host.name", Some(host.host_name.as_str()));
    opt_str(attributes, "host.id", host.host_id.as_deref());
    opt_str(attributes, "container.id", p.container_id.as_deref());
    opt_str(attributes, "k8s.pod.uid", p.k8s_pod_uid.as_deref());
    attributes.str("telemetry.sdk.name", crate::SDK_NAME);
    attributes.str("telemetry.sdk.language", "rust");
    attributes.str("telemetry.sdk.version", crate::VERSION);
}

/// A string attribute, left out when unknown or empty.
fn opt_str(attributes: &mut impl AttrSink, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        attributes.str(key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn attrs(r: &Resource) -> Vec<(String, Value)> {
        r.attributes.iter().map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap())).collect()
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    #[test]
    fn every_attribute() {
        let p = ProcessIdentity {
            pid: 42,
            service_name: "checkout".into(),
            executable_name: "java".into(),
            executable_path: Some("/usr/bin/java".into()),
            service_namespace: Some("shop".into()),
            service_instance_id: Some("i-1".into()),
            parent_pid: Some(1),
            start_time_ticks: Some(5),
            owner: Some("app".into()),
            command_line: Some("java -jar app.jar".into()),
            container_id: Some("c".repeat(64)),
            k8s_pod_uid: Some("98580e16-1a60-4b4a-830e-d7cca11d393b".into()),
        };
        let host = HostInfo { host_name: "node-1".into(), host_id: Some("m".into()), boot_id: Some("b".into()) };
        let got = attrs(&process_resource(&p, &host));
        let expected = vec![
            ("service.name".to_string(), s("checkout")),
            ("service.namespace".into(), s("shop")),
            ("service.instance.id".into(), s("i-1")),
            ("process.pid".into(), Value::IntValue(42)),
            ("process.parent_pid".into(), Value::IntValue(1)),
            ("process.executable.name".into(), s("java")),
            ("process.executable.path".into(), s("/usr/bin/java")),
            ("process.command_line".into(), s("java -jar app.jar")),
            ("process.owner".into(), s("app")),
            ("host.name".into(), s("node-1")),
            ("host.id".into(), s("m")),
            ("container.id".into(), s(&"c".repeat(64))),
            ("k8s.pod.uid".into(), s("98580e16-1a60-4b4a-830e-d7cca11d393b")),
            ("telemetry.sdk.name".into(), s(crate::SDK_NAME)),
            ("telemetry.sdk.language".into(), s("rust")),
            ("telemetry.sdk.version".into(), s(crate::VERSION)),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn direct_encoding_matches_prost() {
        use prost::Message;
        let full = ProcessIdentity {
            pid: 42,
            service_name: "checkout".into(),
            executable_name: "java".into(),
            executable_path: Some("/usr/bin/java".into()),
            service_namespace: Some("shop".into()),
            parent_pid: Some(1),
            start_time_ticks: Some(5),
            owner: Some("app".into()),
            command_line: Some("java -jar app.jar".into()),
            container_id: Some("c".repeat(64)),
            ..Default::default()
        };
        let host = HostInfo { host_name: "node-1".into(), host_id: Some("m".into()), boot_id: Some("b".into()) };
        for (p, host) in [(&full, &host), (&ProcessIdentity::from_comm(7, "curl"), &HostInfo::default())] {
            let (mut buf, mut scratch) = (Vec::new(), String::new());
            write_process_resource(p, host, &mut buf, &mut scratch);
            assert_eq!(buf, process_resource(p, host).encode_to_vec());
        }
    }

    #[test]
    fn minimal_process() {
        let p = ProcessIdentity::from_comm(7, "curl");
        let got = attrs(&process_resource(&p, &HostInfo::default()));
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "service.name",
                "process.pid",
                "process.executable.name",
                "telemetry.sdk.name",
                "telemetry.sdk.language",
                "telemetry.sdk.version"
            ]
        );
    }

    #[test]
    fn generated_instance_id_when_none_is_given() {
        let p = ProcessIdentity { start_time_ticks: Some(5), ..ProcessIdentity::from_comm(7, "curl") };
        let host = HostInfo { host_name: "h".into(), ..Default::default() };
        let got = attrs(&process_resource(&p, &host));
        let id = got.iter().find(|(k, _)| k == "service.instance.id").map(|(_, v)| v.clone());
        assert_eq!(id, p.instance_id(&host).map(Value::StringValue));
        assert!(id.is_some());
    }
}
