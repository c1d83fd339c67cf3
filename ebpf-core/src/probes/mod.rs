//! The kernel side, seen from userspace: start-up checks, then loading and
//! attaching the probes object embedded by `ebpf-probes`.

mod attach;
mod flow_iter;
mod kernel_maps;
mod mapping;
mod pid_bits;
mod preflight;
mod ring_reader;
mod ring_set;

pub use attach::{ProbeError, ProbeSettings, Probes, TLS_ENTRY_PROGRAMS, TLS_RETURN_PROGRAM};
pub use flow_iter::{FlowIter, PassCost};
pub use kernel_maps::{CaptureRule, ConnTable, KernelCounters};
pub use pid_bits::PidFilter;
pub use preflight::{preflight, PreflightError};
pub use ring_reader::{RingError, RingReader};
pub use ring_set::{Drain, RingSet, WATERMARK_SLACK};
