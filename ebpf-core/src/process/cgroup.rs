//! `container.id` and `k8s.pod.uid` from /proc/<pid>/cgroup.
//!
//! Each line is `hierarchy-id:controllers:path` (cgroup v1: one line per
//! hierarchy; v2: the single `0::path`). Container runtimes name the cgroup
//! they create after the container, in one of a few formats, each parsed by a
//! function of its own below. The path is relative to the *reader's* cgroup
//! namespace, so it may start with `/..`; a process in the reader's own
//! namespace root shows `/` (see `mountinfo` for that case).
//!
//! Fixtures for every format are in tests/fixtures/cgroup (README there says
//! where each comes from).

/// A container id: 64 lowercase hex digits, as docker, containerd, CRI-O and
/// podman all make them. Shorter hex runs are not taken (a 32-digit one is,
/// e.g., a systemd or sandbox-manager name, not a container).
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A Kubernetes pod UID: an RFC 4122 UUID, or the 32 hex digits of the hash
/// the kubelet gives a static pod.
pub fn is_pod_uid(s: &str) -> bool {
    let hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    match s.len() {
        32 => s.bytes().all(hex),
        36 => s.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { hex(b) }),
        _ => false,
    }
}

/// The container and pod a process belongs to, as far as it can be told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerIds {
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

impl ContainerIds {
    /// Fills what `self` lacks from `other`.
    pub fn or(self, other: ContainerIds) -> ContainerIds {
        ContainerIds { container_id: self.container_id.or(other.container_id), pod_uid: self.pod_uid.or(other.pod_uid) }
    }
}

/// The content of /proc/<pid>/cgroup. The first line naming a container (or
/// pod) wins; with cgroup v1 every controller line names the same one.
pub fn from_cgroup_file(content: &str) -> ContainerIds {
    content
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .map(from_cgroup_path)
        .fold(ContainerIds::default(), ContainerIds::or)
}

/// One cgroup path. The deepest segment naming a container wins: with
/// docker-in-docker (`/docker/<outer>/docker/<inner>`) the process is in the
/// inner one.
pub fn from_cgroup_path(path: &str) -> ContainerIds {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let container_id = segments.iter().rev().find_map(|s| container_id_in_segment(s));
    let pod_uid = segments.iter().rev().find_map(|s| kubepods_slice_pod_uid(s)).or_else(|| {
        let under_kubepods = segments.iter().any(|s| s.starts_with("kubepods"));
        under_kubepods.then(|| segments.iter().rev().find_map(|s| kubepods_cgroupfs_pod_uid(s))).flatten()
    });
    ContainerIds { container_id: container_id.map(str::to_string), pod_uid }
}

fn container_id_in_segment(segment: &str) -> Option<&str> {
    docker_systemd(segment)
        .or_else(|| containerd_systemd(segment))
        .or_else(|| crio_systemd(segment))
        .or_else(|| podman(segment))
        .or_else(|| nerdctl_systemd(segment))
        .or_else(|| cgroupfs(segment))
}

/// `<prefix><id>.scope`, or `<prefix><id>` when `scope_optional`.
fn prefixed<'a>(segment: &'a str, prefix: &str, scope_optional: bool) -> Option<&'a str> {
    let rest = segment.strip_prefix(prefix)?;
    let id = match rest.strip_suffix(".scope") {
        Some(id) => id,
        None if scope_optional => rest,
        None => return None,
    };
    is_container_id(id).then_some(id)
}

/// Docker with the systemd cgroup driver (cgroup v1 and v2):
/// `/system.slice/docker-<id>.scope`.
fn docker_systemd(segment: &str) -> Option<&str> {
    prefixed(segment, "docker-", false)
}

/// containerd's CRI plugin with the systemd driver:
/// `…/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`. The OCI
/// `cgroupsPath` form `kubepods-…-pod<uid>.slice:cri-containerd:<id>` is
/// taken as well.
fn containerd_systemd(segment: &str) -> Option<&str> {
    prefixed(segment, "cri-containerd-", false).or_else(|| {
        let (_, id) = segment.split_once(":cri-containerd:").or_else(|| segment.split_once("cri-containerd:"))?;
        is_container_id(id).then_some(id)
    })
}

/// CRI-O with the systemd driver: `…/crio-<id>.scope`. Its monitor process
/// lives in `crio-conmon-<id>.scope`, outside the container, and is not
/// taken.
fn crio_systemd(segment: &str) -> Option<&str> {
    prefixed(segment, "crio-", false)
}

/// Podman: `/machine.slice/libpod-<id>.scope` (rootful),
/// `…/user@1000.service/user.slice/libpod-<id>.scope` (rootless), possibly
/// followed by `/container`; `/libpod_parent/libpod-<id>` with the cgroupfs
/// manager. `libpod-conmon-<id>.scope` is the monitor, not the container.
fn podman(segment: &str) -> Option<&str> {
    prefixed(segment, "libpod-", true)
}

/// nerdctl (containerd without Kubernetes) with the systemd driver:
/// `/system.slice/nerdctl-<id>.scope`.
fn nerdctl_systemd(segment: &str) -> Option<&str> {
    prefixed(segment, "nerdctl-", false)
}

/// The cgroupfs drivers name the cgroup by the bare id: docker
/// (`/docker/<id>`), the kubelet with any CRI runtime
/// (`/kubepods/burstable/pod<uid>/<id>`), containerd's `ctr`
/// (`/<namespace>/<id>`), Amazon ECS (`/ecs/<task>/<id>`).
fn cgroupfs(segment: &str) -> Option<&str> {
    is_container_id(segment).then_some(segment)
}

/// The kubelet's systemd driver: `kubepods-burstable-pod<uid>.slice`,
/// `kubepods-besteffort-pod<uid>.slice`, `kubepods-pod<uid>.slice`
/// (guaranteed), also behind a prefix (`kubelet-kubepods-…` in kind), with
/// the UID's dashes turned into underscores (systemd reserves `-`).
fn kubepods_slice_pod_uid(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".slice")?;
    if !name.contains("kubepods") {
        return None;
    }
    let (_, uid) = name.rsplit_once("-pod")?;
    let uid = uid.replace('_', "-");
    is_pod_uid(&uid).then_some(uid)
}

/// The kubelet's cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`,
/// `/kubepods/pod<uid>/<id>` (guaranteed).
fn kubepods_cgroupfs_pod_uid(segment: &str) -> Option<String> {
    let uid = segment.strip_prefix("pod")?;
    is_pod_uid(uid).then(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture;
    use crate::process::container_fixtures::{ids, ID, POD};

    #[test]
    fn docker_cgroup_v1_cgroupfs() {
        assert_eq!(from_cgroup_file(fixture!("docker-v1-cgroupfs.cgroup")), ids(Some(ID), None));
    }

    #[test]
    fn docker_cgroup_v1_systemd() {
        assert_eq!(from_cgroup_file(fixture!("docker-v1-systemd.cgroup")), ids(Some(ID), None));
    }

    #[test]
    fn docker_cgroup_v2_systemd() {
        assert_eq!(from_cgroup_file(fixture!("docker-v2-systemd.cgroup")), ids(Some(ID), None));
        assert_eq!(docker_systemd(&format!("docker-{ID}.scope")), Some(ID));
        assert_eq!(docker_systemd(&format!("docker-{ID}")), None);
    }

    #[test]
    fn docker_cgroup_v2_cgroupfs() {
        assert_eq!(from_cgroup_file(&format!("0::/docker/{ID}\n")), ids(Some(ID), None));
    }

    #[test]
    fn docker_in_docker_takes_the_innermost() {
        let inner = "907b32e50271199abf8f84b6bee8aeb75128e7fc5687a536680c4b47e558ad1d";
        assert_eq!(from_cgroup_file(fixture!("docker-in-docker.cgroup")), ids(Some(inner), None));
    }

    #[test]
    fn containerd_kubernetes_systemd_v2() {
        assert_eq!(from_cgroup_file(fixture!("containerd-k8s-systemd-v2.cgroup")), ids(Some(ID), Some(POD)));
        assert_eq!(containerd_systemd(&format!("cri-containerd-{ID}.scope")), Some(ID));
        assert_eq!(
            containerd_systemd(&format!(
                "kubepods-besteffort-pod98580e16_1a60_4b4a_830e_d7cca11d393b.slice:cri-containerd:{ID}"
            )),
            Some(ID)
        );
    }

    #[test]
    fn containerd_kubernetes_cgroupfs_v1() {
        assert_eq!(from_cgroup_file(fixture!("containerd-k8s-cgroupfs-v1.cgroup")), ids(Some(ID), Some(POD)));
    }

    #[test]
    fn kubernetes_guaranteed_qos() {
        let cgroupfs = format!("0::/kubepods/pod{POD}/{ID}\n");
        assert_eq!(from_cgroup_file(&cgroupfs), ids(Some(ID), Some(POD)));
        let systemd =
            format!("0::/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{ID}.scope\n", POD.replace('-', "_"));
        assert_eq!(from_cgroup_file(&systemd), ids(Some(ID), Some(POD)));
    }

    #[test]
    fn kind_node_prefixes_the_slices() {
        assert_eq!(from_cgroup_file(fixture!("containerd-kind.cgroup")), ids(Some(ID), Some(POD)));
    }

    #[test]
    fn static_pod_uid_is_a_hash() {
        let path = format!("/kubepods/burstable/pod5f4e1a2b3c4d5e6f708192a3b4c5d6e7/{ID}");
        assert_eq!(from_cgroup_path(&path), ids(Some(ID), Some("5f4e1a2b3c4d5e6f708192a3b4c5d6e7")));
    }

    #[test]
    fn crio_kubernetes_systemd() {
        assert_eq!(from_cgroup_file(fixture!("crio-k8s-systemd-v2.cgroup")), ids(Some(ID), Some(POD)));
        assert_eq!(crio_systemd(&format!("crio-{ID}.scope")), Some(ID));
    }

    #[test]
    fn crio_monitor_is_not_the_container() {
        assert_eq!(from_cgroup_file(fixture!("crio-conmon.cgroup")), ids(None, Some(POD)));
    }

    #[test]
    fn podman_rootful_v2() {
        assert_eq!(from_cgroup_file(fixture!("podman-rootful-v2.cgroup")), ids(Some(ID), None));
    }

    #[test]
    fn podman_rootless_v2() {
        assert_eq!(from_cgroup_file(fixture!("podman-rootless-v2.cgroup")), ids(Some(ID), None));
    }

    #[test]
    fn podman_cgroupfs_v1() {
        assert_eq!(from_cgroup_file(fixture!("podman-cgroupfs-v1.cgroup")), ids(Some(ID), None));
        assert_eq!(podman(&format!("libpod-conmon-{ID}.scope")), None);
    }

    #[test]
    fn nerdctl_systemd_v2() {
        assert_eq!(from_cgroup_file(&format!("0::/system.slice/nerdctl-{ID}.scope\n")), ids(Some(ID), None));
    }

    #[test]
    fn reader_in_another_cgroup_namespace() {
        let pod = POD.replace('-', "_");
        let path = format!("0::/../../kubepods.slice/kubepods-pod{pod}.slice/cri-containerd-{ID}.scope");
        assert_eq!(from_cgroup_file(&path), ids(Some(ID), Some(POD)));
    }

    #[test]
    fn host_processes_have_no_container() {
        assert_eq!(from_cgroup_file(fixture!("host-systemd-v2.cgroup")), ContainerIds::default());
        assert_eq!(from_cgroup_file(fixture!("host-hybrid-v1.cgroup")), ContainerIds::default());
        assert_eq!(from_cgroup_file(fixture!("docker-v2-private-namespace.cgroup")), ContainerIds::default());
    }

    #[test]
    fn odd_content() {
        assert_eq!(from_cgroup_file(""), ContainerIds::default());
        assert_eq!(from_cgroup_file("garbage\n\n:::\n0::"), ContainerIds::default());
        // Too short, too long, upper case, not hex.
        assert_eq!(from_cgroup_path(&format!("/docker/{}", &ID[1..])), ContainerIds::default());
        assert_eq!(from_cgroup_path(&format!("/docker/{ID}0")), ContainerIds::default());
        assert_eq!(from_cgroup_path(&format!("/docker/{}", ID.to_uppercase())), ContainerIds::default());
        assert_eq!(from_cgroup_path(&format!("/docker/{}g", &ID[1..])), ContainerIds::default());
        // A pod-looking segment outside kubepods is not a pod.
        assert_eq!(from_cgroup_path(&format!("/pod{POD}")), ContainerIds::default());
        assert_eq!(from_cgroup_path("/kubepods.slice/kubepods-podnope.slice"), ContainerIds::default());
        // Multi-byte characters never split mid-character.
        assert_eq!(from_cgroup_path("/kubepods/podé/crio-é.scope"), ContainerIds::default());
    }

    #[test]
    fn pod_uid_shapes() {
        assert!(is_pod_uid(POD));
        assert!(is_pod_uid("5f4e1a2b3c4d5e6f708192a3b4c5d6e7"));
        assert!(!is_pod_uid("98580e16_1a60_4b4a_830e_d7cca11d393b"));
        assert!(!is_pod_uid("98580e16-1a60-4b4a-830e-d7cca11d393"));
        assert!(!is_pod_uid("98580e1661a60-4b4a-830e-d7cca11d393b"));
    }
}
