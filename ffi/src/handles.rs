//! Registries of live handles. A handle given to C is a never-reused id, not
//! an address, so use-after-free and double free are detected, and a poller
//! blocked on an instance keeps it alive while another thread frees it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ebpf_core::{Batch, Instance};
use once_cell::sync::Lazy;
use parking_lot::Mutex;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Registry<T> {
    live: Lazy<Mutex<HashMap<u64, T>>>,
}

impl<T> Registry<T> {
    const fn new() -> Self {
        Self { live: Lazy::new(|| Mutex::new(HashMap::new())) }
    }

    pub(crate) fn insert(&self, value: T) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.live.lock().insert(id, value);
        id
    }

    pub(crate) fn remove(&self, id: u64) -> Option<T> {
        self.live.lock().remove(&id)
    }

    pub(crate) fn with<R>(&self, id: u64, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.live.lock().get(&id).map(f)
    }
}

pub(crate) static INSTANCES: Registry<Arc<Instance>> = Registry::new();
pub(crate) static BATCHES: Registry<Batch> = Registry::new();
