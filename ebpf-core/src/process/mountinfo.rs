//! `container.id` and `k8s.pod.uid` from /proc/<pid>/mountinfo, for when the
//! cgroup path does not name the container: with cgroup v2 a container in
//! its own cgroup namespace may show just `0::/`.
//!
//! The runtimes bind-mount per-container files over /etc/hostname,
//! /etc/hosts and /etc/resolv.conf, and the mount's source path (the 4th
//! field, `root`) names the container's directory:
//!
//! - docker: `/var/lib/docker/containers/<id>/hostname` (or
//!   `/docker/containers/<id>/…` when /var/lib is a mount of its own);
//! - podman: `…/containers/storage/overlay-containers/<id>/userdata/hostname`;
//! - the kubelet: `/var/lib/kubelet/pods/<pod uid>/etc-hosts`.
//!
//! containerd's /etc/hostname comes from the *sandbox's* directory
//! (`…/sandboxes/<sandbox id>/hostname`), which is the pause container, not
//! this one, and is not taken. Only those three mount points are looked at:
//! a host process's mount table also lists container directories (shm,
//! volume subPaths), which say nothing about the process itself. A cgroup
//! filesystem mount's root is a cgroup path and goes through the cgroup
//! parsers.
//!
//! Line format (proc(5)): `id parent major:minor root mount-point options
//! [optional fields…] - fstype source super-options`, spaces in paths
//! escaped as `\040`.

use std::collections::HashMap;

use super::cgroup::{from_cgroup_path, is_container_id, is_pod_uid, ContainerIds};
use super::procfs::read_capped;

/// /proc/<pid>/mountinfo is read up to this size (a busy Kubernetes node's
/// host mount table can be a few hundred KiB; a container's is small).
pub const MOUNTINFO_LIMIT: u64 = 512 << 10;

const RUNTIME_FILES: &[&str] = &["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// Mount namespaces remembered at once; beyond that the cache starts over.
const NAMESPACES_CACHED: usize = 4096;

/// What the mount table of each mount namespace says. All processes of a
/// namespace share one mount table, and a host has few namespaces but many
/// processes, most of them in the host's own namespace, whose table can be
/// hundreds of KiB on a busy node: it is parsed once per namespace, not once
/// per process.
#[derive(Debug, Default)]
pub struct ByNamespace {
    ids: HashMap<String, ContainerIds>,
}

impl ByNamespace {
    /// /proc/<pid>/mountinfo, through the cache keyed by /proc/<pid>/ns/mnt.
    pub fn read(&mut self, proc_dir: &str) -> ContainerIds {
        let Ok(ns) = std::fs::read_link(format!("{proc_dir}/ns/mnt")) else { return read_file(proc_dir) };
        let ns = ns.to_string_lossy().into_owned();
        if let Some(ids) = self.ids.get(&ns) {
            return ids.clone();
        }
        let ids = read_file(proc_dir);
        if self.ids.len() >= NAMESPACES_CACHED {
            self.ids.clear();
        }
        self.ids.insert(ns, ids.clone());
        ids
    }
}

fn read_file(proc_dir: &str) -> ContainerIds {
    read_capped(format!("{proc_dir}/mountinfo"), MOUNTINFO_LIMIT)
        .map(|m| from_mountinfo(&String::from_utf8_lossy(&m)))
        .unwrap_or_default()
}

/// The content of /proc/<pid>/mountinfo.
pub fn from_mountinfo(content: &str) -> ContainerIds {
    content.lines().filter_map(parse_line).map(from_mount).fold(ContainerIds::default(), ContainerIds::or)
}

struct Mount<'a> {
    root: &'a str,
    mount_point: &'a str,
    fstype: &'a str,
}

fn parse_line(line: &str) -> Option<Mount<'_>> {
    let mut fields = line.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
    Some(Mount { root, mount_point, fstype })
}

fn from_mount(m: Mount<'_>) -> ContainerIds {
    if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        return from_cgroup_path(m.root);
    }
    if !RUNTIME_FILES.contains(&m.mount_point) {
        return ContainerIds::default();
    }
    ContainerIds {
        container_id: containers_dir_id(m.root).map(str::to_string),
        pod_uid: kubelet_pod_dir_uid(m.root).map(str::to_string),
    }
}

/// `…/containers/<id>/…` (docker) or `…/overlay-containers/<id>/…` (podman).
fn containers_dir_id(root: &str) -> Option<&str> {
    let segments: Vec<&str> = root.split('/').collect();
    segments
        .windows(2)
        .find(|w| matches!(w[0], "containers" | "overlay-containers") && is_container_id(w[1]))
        .map(|w| w[1])
}

/// `…/pods/<uid>/…` (the kubelet's per-pod directory).
fn kubelet_pod_dir_uid(root: &str) -> Option<&str> {
    let segments: Vec<&str> = root.split('/').collect();
    segments.windows(2).find(|w| w[0] == "pods" && is_pod_uid(w[1])).map(|w| w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture;
    use crate::process::container_fixtures::{ids, ID, POD};

    #[test]
    fn docker_v2_private_cgroup_namespace() {
        assert_eq!(from_mountinfo(fixture!("docker-v2.mountinfo")), ids(Some(ID), None));
    }

    #[test]
    fn docker_with_var_lib_on_its_own_mount() {
        let line =
            format!("812 790 8:17 /docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/sdb1 rw");
        assert_eq!(from_mountinfo(&line), ids(Some(ID), None));
    }

    #[test]
    fn podman_rootless() {
        assert_eq!(from_mountinfo(fixture!("podman-rootless.mountinfo")), ids(Some(ID), None));
    }

    #[test]
    fn kubernetes_containerd_gives_the_pod_not_the_sandbox() {
        assert_eq!(from_mountinfo(fixture!("containerd-k8s.mountinfo")), ids(None, Some(POD)));
    }

    #[test]
    fn cgroup_mount_with_host_namespace() {
        let line =
            format!("1290 1281 0:30 /system.slice/docker-{ID}.scope /sys/fs/cgroup ro,relatime - cgroup2 cgroup rw");
        assert_eq!(from_mountinfo(&line), ids(Some(ID), None));
    }

    #[test]
    fn host_mount_table_names_no_container() {
        assert_eq!(from_mountinfo(fixture!("host-docker-node.mountinfo")), ContainerIds::default());
    }

    #[test]
    fn cached_by_namespace() {
        let me = format!("/proc/{}", std::process::id());
        let mut cache = ByNamespace::default();
        let first = cache.read(&me);
        assert_eq!(first, read_file(&me));
        assert_eq!(cache.ids.len(), 1);
        assert_eq!(cache.read("/proc/self"), first);
        assert_eq!(cache.ids.len(), 1);
        assert_eq!(cache.read("/proc/does-not-exist"), ContainerIds::default());
    }

    #[test]
    fn odd_content() {
        assert_eq!(from_mountinfo(""), ContainerIds::default());
        assert_eq!(from_mountinfo("1 2 3\n\n- - - - - -\n"), ContainerIds::default());
        // No separator: the fstype is unknown and the line is skipped.
        let line = format!("1 2 0:1 /containers/{ID}/hostname /etc/hostname rw");
        assert_eq!(from_mountinfo(&line), ContainerIds::default());
        // Not a runtime file.
        let line = format!("1 2 0:1 /var/lib/docker/containers/{ID}/mounts/shm /dev/shm rw - tmpfs shm rw");
        assert_eq!(from_mountinfo(&line), ContainerIds::default());
    }
}
