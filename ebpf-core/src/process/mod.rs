//! Who a traced process is: its service name and executable, read once from
//! /proc and cached until the process exits.

mod identity;

pub use identity::{ProcessIdentity, ProcessTable};
