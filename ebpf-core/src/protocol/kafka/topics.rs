//! Topic IDs to names. Produce and Fetch name topics by a random 128-bit ID
//! from v13 on; only Metadata responses say which name an ID has, and a
//! client usually asks for metadata on another connection than the one it
//! produces or fetches on. So the map is shared by every Kafka connection
//! of a receiver: IDs are random UUIDs, unique across clusters in practice,
//! and an ID never changes its name (a topic re-created gets a new one).

use std::collections::HashMap;

use compact_str::CompactString;
use parking_lot::Mutex;

/// Topic IDs remembered (each costs about 50 bytes).
pub const MAX_TOPIC_IDS: usize = 16 * 1024;

/// The topic names learned from Metadata responses, by ID.
#[derive(Debug, Default)]
pub struct TopicNames {
    map: Mutex<HashMap<[u8; 16], CompactString>>,
}

impl TopicNames {
    pub fn new() -> Self {
        TopicNames::default()
    }

    pub fn learn(&self, id: [u8; 16], name: &CompactString) {
        let mut map = self.map.lock();
        if map.get(&id) == Some(name) {
            return;
        }
        if map.len() >= MAX_TOPIC_IDS {
            // Forget everything rather than track ages: re-learned from the
            // next Metadata response, which clients refresh every few minutes.
            map.clear();
        }
        map.insert(id, name.clone());
    }

    pub fn name(&self, id: &[u8; 16]) -> Option<CompactString> {
        self.map.lock().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
