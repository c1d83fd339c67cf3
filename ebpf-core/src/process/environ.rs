//! What a process declares about itself through the OpenTelemetry SDK
//! environment variables, read from /proc/<pid>/environ.
//!
//! Only `OTEL_SERVICE_NAME` and the `service.*` entries of
//! `OTEL_RESOURCE_ATTRIBUTES` are taken: they name the service whose spans
//! we make. Other entries are not forwarded (they are arbitrary user keys).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// /proc/<pid>/environ is scanned up to this many bytes. Only the two OTEL
/// variables are kept, so the memory used is bounded by the variables, not by
/// the environment.
pub const ENVIRON_LIMIT: u64 = 256 << 10;

/// The `service.*` resource attributes a process sets for itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAttributes {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub instance_id: Option<String>,
}

/// Scans /proc/<pid>/environ (or any NUL-separated environment file).
/// Unreadable (gone, or no permission) → nothing declared.
pub fn read_service_attributes(path: impl AsRef<Path>) -> ServiceAttributes {
    let Ok(file) = File::open(path) else { return ServiceAttributes::default() };
    let mut reader = BufReader::new(file.take(ENVIRON_LIMIT));
    let (mut service_name, mut resource_attributes) = (None, None);
    let mut var = Vec::new();
    loop {
        var.clear();
        match reader.read_until(0, &mut var) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // A variable cut by the size limit has no terminating NUL: drop it
        // rather than use half a value.
        let Some(var) = var.strip_suffix(b"\0") else { break };
        // The first definition wins, as with getenv(3).
        if let Some(v) = var.strip_prefix(b"OTEL_SERVICE_NAME=") {
            service_name.get_or_insert_with(|| v.to_vec());
        } else if let Some(v) = var.strip_prefix(b"OTEL_RESOURCE_ATTRIBUTES=") {
            resource_attributes.get_or_insert_with(|| v.to_vec());
        }
    }
    service_attributes(service_name.as_deref(), resource_attributes.as_deref())
}

/// Combines the two variables' values: `OTEL_SERVICE_NAME` wins over a
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`; blank values count as unset.
pub fn service_attributes(service_name: Option<&[u8]>, resource_attributes: Option<&[u8]>) -> ServiceAttributes {
    let mut out = ServiceAttributes::default();
    if let Some(attrs) = resource_attributes.and_then(parse_resource_attributes) {
        for (key, value) in attrs {
            let slot = match key.as_str() {
                "service.name" => &mut out.name,
                "service.namespace" => &mut out.namespace,
                "service.instance.id" => &mut out.instance_id,
                _ => continue,
            };
            // Later entries override earlier ones, as the SDKs merge them.
            *slot = Some(value).filter(|v| !v.trim().is_empty());
        }
    }
    if let Some(name) = service_name.map(String::from_utf8_lossy).map(|n| n.trim().to_string()) {
        if !name.is_empty() {
            out.name = Some(name);
        }
    }
    out
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES`: `key1=value1,key2=value2`, the W3C
/// Baggage format without properties. Whitespace around keys and values is
/// trimmed; values are percent-decoded (invalid UTF-8 after decoding becomes
/// U+FFFD); empty members (`a=1,,b=2`, a trailing comma) are skipped.
///
/// As the OpenTelemetry specification asks, the whole value is discarded
/// (`None`) on any error: a member without `=`, an empty key, or a malformed
/// percent escape.
pub fn parse_resource_attributes(value: &[u8]) -> Option<Vec<(String, String)>> {
    let value = std::str::from_utf8(value).ok()?;
    let mut out = Vec::new();
    for member in value.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        out.push((key.to_string(), percent_decode(value.trim())?));
    }
    Some(out)
}

/// `%XX` → the byte 0xXX; `None` for a `%` not followed by two hex digits.
/// `+` stays a plus (Baggage values are not form-encoded).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> Option<Vec<(String, String)>> {
        parse_resource_attributes(s.as_bytes())
    }

    fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn resource_attributes_plain() {
        assert_eq!(
            attrs("service.name=cart,deployment.environment.name=prod"),
            pairs(&[("service.name", "cart"), ("deployment.environment.name", "prod")])
        );
        assert_eq!(attrs(" service.name = cart , k=v "), pairs(&[("service.name", "cart"), ("k", "v")]));
        assert_eq!(attrs(""), pairs(&[]));
        assert_eq!(attrs("a=1,,b=2,"), pairs(&[("a", "1"), ("b", "2")]));
        // Only the first `=` splits: the rest belongs to the value.
        assert_eq!(attrs("a=b=c"), pairs(&[("a", "b=c")]));
        assert_eq!(attrs("a="), pairs(&[("a", "")]));
    }

    #[test]
    fn resource_attributes_percent_decoding() {
        assert_eq!(attrs("service.namespace=my%20team"), pairs(&[("service.namespace", "my team")]));
        assert_eq!(attrs("k=a%2Cb%3Dc"), pairs(&[("k", "a,b=c")]));
        assert_eq!(attrs("k=caf%C3%A9"), pairs(&[("k", "café")]));
        assert_eq!(attrs("k=%e2%9c%93"), pairs(&[("k", "✓")]));
        assert_eq!(attrs("k=a+b"), pairs(&[("k", "a+b")]));
        assert_eq!(attrs("k=%25"), pairs(&[("k", "%")]));
        // Decoded bytes that are not UTF-8 are replaced, not rejected.
        assert_eq!(attrs("k=%FFx"), pairs(&[("k", "\u{fffd}x")]));
    }

    #[test]
    fn resource_attributes_errors_discard_everything() {
        assert_eq!(attrs("service.name=cart,oops"), None);
        assert_eq!(attrs("=v,service.name=cart"), None);
        assert_eq!(attrs("service.name=cart,k=100%"), None);
        assert_eq!(attrs("k=%4"), None);
        assert_eq!(attrs("k=%zz"), None);
        assert_eq!(attrs("k=%+1"), None);
        assert_eq!(parse_resource_attributes(b"k=\xff"), None);
    }

    #[test]
    fn service_attribute_precedence() {
        let s = |name: Option<&str>, attrs: Option<&str>| {
            service_attributes(name.map(str::as_bytes), attrs.map(str::as_bytes))
        };
        assert_eq!(s(Some("checkout"), None).name.as_deref(), Some("checkout"));
        assert_eq!(s(None, Some("service.name=cart")).name.as_deref(), Some("cart"));
        assert_eq!(s(Some("checkout"), Some("service.name=cart")).name.as_deref(), Some("checkout"));
        assert_eq!(s(Some("  "), Some("service.name=cart")).name.as_deref(), Some("cart"));
        assert_eq!(s(Some(""), None).name, None);
        assert_eq!(s(None, Some("service.name=")).name, None);
        let all = s(None, Some("service.namespace=shop,service.instance.id=627cc493-f310-47de-96bd-71410b7dec09,x=1"));
        assert_eq!(
            all,
            ServiceAttributes {
                name: None,
                namespace: Some("shop".into()),
                instance_id: Some("627cc493-f310-47de-96bd-71410b7dec09".into()),
            }
        );
        // A malformed OTEL_RESOURCE_ATTRIBUTES is ignored as a whole.
        assert_eq!(s(None, Some("service.name=cart,broken")), ServiceAttributes::default());
    }

    fn environ_file(name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ebpf-core-environ-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn reads_environ_file() {
        let path = environ_file(
            "basic",
            b"PATH=/usr/bin\0OTEL_RESOURCE_ATTRIBUTES=service.name=cart,service.namespace=shop\0\
              OTEL_SERVICE_NAME=checkout\0OTEL_SERVICE_NAME=second\0HOME=/\0",
        );
        let got = read_service_attributes(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.name.as_deref(), Some("checkout"));
        assert_eq!(got.namespace.as_deref(), Some("shop"));
        assert_eq!(read_service_attributes("/proc/does-not-exist/environ"), ServiceAttributes::default());
    }

    #[test]
    fn environ_beyond_the_limit_is_ignored() {
        let mut content = b"OTEL_SERVICE_NAME=early\0".to_vec();
        content.extend(std::iter::repeat_n(b'x', ENVIRON_LIMIT as usize));
        content.extend(b"\0OTEL_RESOURCE_ATTRIBUTES=service.namespace=late\0");
        let path = environ_file("big", &content);
        let got = read_service_attributes(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.name.as_deref(), Some("early"));
        assert_eq!(got.namespace, None);
    }
}
