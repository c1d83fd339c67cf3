//! Every attribute key the product emits is a current (non-deprecated)
//! OpenTelemetry semantic convention, checked against the registry YAML in
//! ../shared/semconv (override with OTEL_EBPF_SEMCONV_DIR).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpf_core::clock::WallClock;
use ebpf_core::conntrack::{Endpoints, Exchange};
use ebpf_core::otlp::{process_resource, HostInfo};
use ebpf_core::process::ProcessIdentity;
use ebpf_core::protocol::http1::{HttpExchange, HttpVersion};
use ebpf_core::protocol::Role;
use ebpf_core::spans::{http_span, IdGenerator};
use serde_yaml_ng::Value as Yaml;

/// Product-specific names: few, namespaced, documented in README. None yet.
const PROJECT_NAMES: &[&str] = &[];

fn semconv_dir() -> PathBuf {
    std::env::var_os("OTEL_EBPF_SEMCONV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/semconv"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

/// attribute id → deprecated?
fn registry() -> HashMap<String, bool> {
    let root = semconv_dir();
    assert!(
        root.join("model").is_dir(),
        "semantic-conventions registry not found at {} (set OTEL_EBPF_SEMCONV_DIR)",
        root.display()
    );
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    let mut attrs = HashMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        {
            // Two layouts coexist: `groups[].attributes[].id` and, in
            // `file_format: definition/2` files, top-level `attributes[].key`.
            let grouped =
                doc.get("groups").and_then(Yaml::as_sequence).into_iter().flatten().filter_map(|g| g.get("attributes"));
            for list in grouped.chain(doc.get("attributes")) {
                for a in list.as_sequence().into_iter().flatten() {
                    if let Some(id) = a.get("id").or_else(|| a.get("key")).and_then(Yaml::as_str) {
                        let deprecated = a.get("deprecated").is_some();
                        let e = attrs.entry(id.to_string()).or_insert(deprecated);
                        *e = *e && deprecated;
                    }
                }
            }
        }
    }
    attrs
}

fn exchange(role: Role, method: &str, status: Option<u16>) -> Exchange {
    Exchange {
        http: HttpExchange {
            role,
            method: method.into(),
            target: "/a?b=c".into(),
            version: HttpVersion::Http11,
            host: Some("svc:8080".into()),
            status,
            request_start_ns: 1,
            request_end_ns: 2,
            response_start_ns: Some(3),
            response_end_ns: 4,
            request_body_size: 5,
            response_body_size: 6,
        },
        process: Arc::new(ProcessIdentity::from_comm(1, "x")),
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 8080),
            peer: ("10.0.0.2".parse().unwrap(), 5000),
        }),
    }
}

#[test]
fn every_emitted_attribute_is_a_current_convention() {
    let registry = registry();
    assert!(registry.len() > 500, "registry looks empty: {} attributes", registry.len());
    let mut keys = Vec::new();
    let ids = &mut IdGenerator::new();
    let clock = WallClock::new();
    for role in [Role::Server, Role::Client] {
        for (method, status) in [("GET", Some(200)), ("POST", Some(500)), ("PURGE", Some(404)), ("GET", None)] {
            let span = http_span(&exchange(role, method, status), &clock, ids);
            keys.extend(span.attributes.into_iter().map(|kv| kv.key));
        }
    }
    let identity = ProcessIdentity {
        pid: 1,
        service_name: "s".into(),
        executable_name: "e".into(),
        executable_path: Some("/bin/e".into()),
    };
    let resource = process_resource(&identity, &HostInfo { host_name: "h".into() });
    keys.extend(resource.attributes.into_iter().map(|kv| kv.key));
    keys.sort();
    keys.dedup();
    for key in &keys {
        if PROJECT_NAMES.contains(&key.as_str()) {
            continue;
        }
        match registry.get(key) {
            None => panic!("{key} is not in the semantic-conventions registry"),
            Some(true) => panic!("{key} is deprecated in the semantic-conventions registry"),
            Some(false) => {}
        }
    }
    // The check itself must be able to fail.
    assert_eq!(registry.get("http.method"), Some(&true), "http.method should read as deprecated");
    assert!(!registry.contains_key("http.not_a_convention"));
}
