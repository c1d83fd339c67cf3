//! What the kernel sent, event by event: a `record_events` recording read back
//! (the receiver writes it; it is complete once the receiver has stopped).

use std::path::Path;

use ebpf_core::events::recording::read_records;
use ebpf_core::events::{decode, ConnOpen, Event, Header, Transport};
use ebpf_core::protocol::Direction;

/// One data event, owned.
#[derive(Debug, Clone)]
pub struct DataRec {
    pub hdr: Header,
    pub direction: Direction,
    pub total_len: u32,
    pub payload: Vec<u8>,
    /// `OE_SYS_*`: the call that moved the bytes.
    pub syscall: u16,
}

#[derive(Debug, Default)]
pub struct Recording {
    pub opens: Vec<(Header, ConnOpen)>,
    pub data: Vec<DataRec>,
    pub closes: Vec<Header>,
}

/// Offset of `oe_data_meta.syscall` (after the 32-byte header, total_len,
/// captured_len and direction).
const SYSCALL_OFFSET: usize = 42;

impl Recording {
    pub fn read(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("recording {}: {e}", path.display()));
        let mut rec = Recording::default();
        for record in read_records(&bytes) {
            match decode(record).unwrap_or_else(|e| panic!("undecodable record in the recording: {e}")) {
                Event::ConnOpen(h, open) => rec.opens.push((h, open)),
                Event::Data(h, d) => {
                    let syscall = u16::from_ne_bytes([record[SYSCALL_OFFSET], record[SYSCALL_OFFSET + 1]]);
                    rec.data.push(DataRec {
                        hdr: h,
                        direction: d.direction,
                        total_len: d.total_len,
                        payload: d.payload.to_vec(),
                        syscall,
                    });
                }
                Event::ConnClose(h) => rec.closes.push(h),
                Event::ProcessExit(_) | Event::ProcessExec(..) => {}
            }
        }
        rec
    }

    /// Open events of `transport` connections whose local port is `port`.
    pub fn opens_on_local_port(&self, transport: Transport, port: u16) -> Vec<&(Header, ConnOpen)> {
        self.opens.iter().filter(|(_, o)| o.transport == transport && o.local.1 == port).collect()
    }

    pub fn data_of(&self, conn_id: u64) -> Vec<&DataRec> {
        self.data.iter().filter(|d| d.hdr.conn_id == conn_id).collect()
    }

    pub fn closed(&self, conn_id: u64) -> bool {
        self.closes.iter().any(|h| h.conn_id == conn_id)
    }
}
