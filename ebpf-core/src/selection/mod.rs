//! Which processes and connections are traced. Decisions are made here, in
//! userspace, where globs and /proc can be read; the kernel applies them with
//! one bit test per event for processes (`pid_bits`) and one map lookup per
//! new connection for ports (`port_filter`),
//! and forked children inherit their parent's decision in the kernel.

mod config;
mod facts;
mod selector;

pub use config::{Criteria, SelectionConfig};
pub use facts::ProcessFacts;
pub use selector::{PidMode, PortMode, Selector, SelectorError};
