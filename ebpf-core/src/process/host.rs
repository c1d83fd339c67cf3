//! Facts about this host, read once: `host.name`, `host.id`, and the boot id
//! that makes generated `service.instance.id`s unique across reboots.

use super::procfs::{read_capped, SMALL_FILE_LIMIT};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// `host.name`: the kernel's hostname (of the reader's UTS namespace).
    pub host_name: String,
    /// `host.id`: the systemd machine id, from /etc/machine-id, else
    /// /var/lib/dbus/machine-id; `None` when neither holds one.
    pub host_id: Option<String>,
    /// /proc/sys/kernel/random/boot_id: a random UUID the kernel draws at
    /// each boot. Not exported; an input of the generated instance id.
    pub boot_id: Option<String>,
}

impl HostInfo {
    pub fn read() -> Self {
        let host_name = read_line("/proc/sys/kernel/hostname").unwrap_or_default();
        let host_id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .into_iter()
            .find_map(|path| read_line(path).and_then(|id| machine_id(&id)));
        let boot_id = read_line("/proc/sys/kernel/random/boot_id").filter(|id| !id.is_empty());
        Self { host_name, host_id, boot_id }
    }
}

fn read_line(path: &str) -> Option<String> {
    let content = read_capped(path, SMALL_FILE_LIMIT).ok()?;
    Some(String::from_utf8_lossy(&content).trim().to_string())
}

/// A machine-id(5) file's content: one line of 32 lowercase hex digits.
/// During early boot, or in images built to get one at first boot, the file
/// is empty or says `uninitialized`: no id.
pub fn machine_id(content: &str) -> Option<String> {
    let id = content.trim();
    let valid = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_content() {
        assert_eq!(
            machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4\n").as_deref(),
            Some("3d1219c7c4c5404aaa1f6d2a48adfda4")
        );
        assert_eq!(machine_id(""), None);
        assert_eq!(machine_id("\n"), None);
        assert_eq!(machine_id("uninitialized\n"), None);
        assert_eq!(machine_id("3D1219C7C4C5404AAA1F6D2A48ADFDA4"), None);
        assert_eq!(machine_id("3d1219c7c4c5404aaa1f6d2a48adfda"), None);
    }

    #[test]
    fn reads_this_host() {
        let host = HostInfo::read();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host.host_name, hostname.trim());
        let expected = std::fs::read_to_string("/etc/machine-id")
            .ok()
            .and_then(|c| machine_id(&c))
            .or_else(|| std::fs::read_to_string("/var/lib/dbus/machine-id").ok().and_then(|c| machine_id(&c)));
        assert_eq!(host.host_id, expected);
        assert_eq!(host.boot_id.map(|b| b.len()), Some(36));
    }
}
