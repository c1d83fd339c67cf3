//! The straight path from ring-buffer records to batches: `processor` is the
//! pure part (decode → connection state → parser → spans → batches), `worker`
//! the thread that feeds it from the kernel.

mod processor;
mod worker;

pub use processor::Processor;
pub use worker::{spawn_worker, FlowPasses, Outbox, WorkerHandle};
