//! Shared by the cgroup and mountinfo tests: the ids their fixtures carry.

use super::cgroup::ContainerIds;

/// The text of a file in ebpf-core/tests/fixtures/cgroup/.
#[macro_export]
#[doc(hidden)]
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cgroup/", $name))
    };
}

/// The container id every fixture uses.
pub const ID: &str = "c59e8338a22cc3f71e41b0f447228b574ecc8c9d76508b6810543ec273e5f2a9";
/// The pod uid every Kubernetes fixture uses.
pub const POD: &str = "98580e16-1a60-4b4a-830e-d7cca11d393b";

pub fn ids(container_id: Option<&str>, pod_uid: Option<&str>) -> ContainerIds {
    ContainerIds { container_id: container_id.map(String::from), pod_uid: pod_uid.map(String::from) }
}
