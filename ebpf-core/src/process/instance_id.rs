//! Generated `service.instance.id`s.
//!
//! A process that does not set `service.instance.id` in
//! `OTEL_RESOURCE_ATTRIBUTES` gets a name-based UUID (version 5, RFC 9562),
//! as the semantic conventions recommend for an id derived from an inherent
//! unique one: SHA-1 in the namespace `4d63009a-8d0f-11ee-aad7-4c796ed8e320`
//! (the one the conventions give) of the string
//!
//! ```text
//! <host.id, else host.name>:<boot id>:<pid>:<start time>
//! ```
//!
//! where the boot id is /proc/sys/kernel/random/boot_id (empty if
//! unreadable) and the start time is field 22 of /proc/<pid>/stat (clock
//! ticks after boot). A pid and its start time tell a process apart from any
//! other on this host during one boot; the boot id, across reboots (services
//! often get the same pid at the same tick every boot). The same process
//! always gets the same id, whichever receiver instance reads it; the
//! inputs are not recoverable from it.

use super::host::HostInfo;

/// The namespace the semantic conventions give for `service.instance.id` UUIDs.
pub const SERVICE_INSTANCE_NAMESPACE: [u8; 16] =
    [0x4d, 0x63, 0x00, 0x9a, 0x8d, 0x0f, 0x11, 0xee, 0xaa, 0xd7, 0x4c, 0x79, 0x6e, 0xd8, 0xe3, 0x20];

/// The generated `service.instance.id` of the process `pid` started at
/// `start_time_ticks` (see the module documentation).
pub fn generated_instance_id(host: &HostInfo, pid: u32, start_time_ticks: u64) -> String {
    let host_key = host.host_id.as_deref().unwrap_or(&host.host_name);
    let boot = host.boot_id.as_deref().unwrap_or("");
    uuid_v5(&SERVICE_INSTANCE_NAMESPACE, format!("{host_key}:{boot}:{pid}:{start_time_ticks}").as_bytes())
}

/// A version 5 (name-based, SHA-1) UUID in its hyphenated lowercase form.
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::from_bytes(*namespace), name).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_known_answer() {
        // RFC 9562's DNS namespace; Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
        let dns = [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];
        assert_eq!(uuid_v5(&dns, b"python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    }

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let host = HostInfo {
            host_name: "node-1".into(),
            host_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
            boot_id: Some("8f08bb5f-fb8b-451f-af09-ef64490197ae".into()),
        };
        let id = generated_instance_id(&host, 42, 1000);
        // Python: uuid.uuid5(uuid.UUID("4d63009a-8d0f-11ee-aad7-4c796ed8e320"),
        //   "3d1219c7c4c5404aaa1f6d2a48adfda4:8f08bb5f-fb8b-451f-af09-ef64490197ae:42:1000")
        assert_eq!(id, "c6265a8b-05d9-56ce-ab51-1043537f9777");
        assert_eq!(id, generated_instance_id(&host, 42, 1000));
        assert_ne!(id, generated_instance_id(&host, 43, 1000));
        assert_ne!(id, generated_instance_id(&host, 42, 1001));
        let rebooted = HostInfo { boot_id: Some("00000000-fb8b-451f-af09-ef64490197ae".into()), ..host.clone() };
        assert_ne!(id, generated_instance_id(&rebooted, 42, 1000));
        let other = HostInfo { host_id: Some("00000000c4c5404aaa1f6d2a48adfda4".into()), ..host.clone() };
        assert_ne!(id, generated_instance_id(&other, 42, 1000));
        // host.name stands in for a missing host.id.
        let unnamed = HostInfo { host_id: None, ..host };
        assert_ne!(id, generated_instance_id(&unnamed, 42, 1000));
    }
}
