//! One ring buffer of the probes, read in place: the record at the head can
//! be looked at, taken, or left for later, and the consumer position is
//! published in one store per drain (see `RingSet`).
//!
//! Layout (kernel/bpf/ringbuf.c): a consumer page (read-write), a producer
//! page (read-only), then the data pages mapped twice in a row, so a record
//! that wraps around the end reads as one slice. Each record opens with an
//! 8-byte header: a 32-bit length whose top two bits are the busy and
//! discard flags, then the page offset the kernel uses.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use aya::maps::MapData;

use super::mapping::{page_size, Mapping};

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("reading the ring buffer's size: {0}")]
    Info(#[from] aya::maps::MapError),
    #[error("ring buffer size {0} is not a power of two of at least a page")]
    Size(u32),
    #[error("mapping the ring buffer: {0}")]
    Mmap(std::io::Error),
}

pub struct RingReader {
    /// Read-write: the consumer position at offset 0.
    consumer: Mapping,
    /// Read-only: the producer position at offset 0, data from `page`.
    producer: Mapping,
    page: usize,
    size: usize,
    /// How far this reader has read.
    pos: usize,
    /// What the kernel has been told.
    published: usize,
    /// The producer position at the last refresh.
    reserved: usize,
    /// Length of the record `head` last returned, for `take`.
    head_len: usize,
    /// The ring itself: its file descriptor is waited on, and it is closed
    /// (last field, dropped last) after the mappings are gone.
    map: MapData,
}

impl RingReader {
    pub fn new(map: MapData) -> Result<Self, RingError> {
        let size = map.info()?.max_entries();
        let page = page_size();
        let size_bytes = size as usize;
        if !size.is_power_of_two() || size_bytes < page {
            return Err(RingError::Size(size));
        }
        let fd = map.fd().as_fd().as_raw_fd();
        let consumer = Mapping::new(fd, page, 0, libc::PROT_READ | libc::PROT_WRITE).map_err(RingError::Mmap)?;
        let producer = Mapping::new(fd, page + 2 * size_bytes, page, libc::PROT_READ).map_err(RingError::Mmap)?;
        let mut reader =
            Self { consumer, producer, page, size: size_bytes, pos: 0, published: 0, reserved: 0, head_len: 0, map };
        reader.pos = reader.consumer_pos().load(Ordering::Acquire);
        reader.published = reader.pos;
        reader.reserved = reader.pos;
        Ok(reader)
    }

    /// The ring buffer's file descriptor, to wait on.
    pub fn as_raw_fd(&self) -> i32 {
        self.map.fd().as_fd().as_raw_fd()
    }

    fn consumer_pos(&self) -> &AtomicUsize {
        // SAFETY: the consumer page is mapped read-write, page-aligned, and the
        // kernel keeps the position as an unsigned long at its start.
        unsafe { &*self.consumer.ptr.cast::<AtomicUsize>() }
    }

    fn producer_pos(&self) -> usize {
        // SAFETY: as above, in the producer page. The kernel stores it with
        // release semantics after a record's header is written.
        unsafe { &*self.producer.ptr.cast::<AtomicUsize>() }.load(Ordering::Acquire)
    }

    /// Re-reads how far the producers have reserved. Records reserved
    /// later are not seen until the next refresh.
    pub fn refresh(&mut self) {
        self.reserved = self.producer_pos();
    }

    /// The record at the head, skipping discarded ones: `None` at the end
    /// of what was reserved at the last refresh, or at a record its CPU is
    /// still writing.
    pub fn head(&mut self) -> Option<&[u8]> {
        loop {
            if self.pos == self.reserved {
                return None;
            }
            let offset = self.pos & (self.size - 1);
            let header = self.data(offset, HEADER_LEN);
            // SAFETY: `header` is 8 readable bytes of the data pages, 8-aligned
            // (records are), where the kernel commits the length with an
            // atomic exchange; Acquire pairs with it so the record's bytes are
            // visible once the busy bit is clear.
            let len_word = unsafe { &*header.as_ptr().cast::<AtomicU32>() }.load(Ordering::Acquire);
            if len_word & BUSY_BIT != 0 {
                return None;
            }
            let len = (len_word & !(BUSY_BIT | DISCARD_BIT)) as usize;
            if len > self.size - HEADER_LEN {
                // Not a record the kernel could have written: stop here
                // rather than read past the mapping.
                log::error!("ring buffer: record of {len} bytes at {offset}; reading stopped");
                return None;
            }
            if len_word & DISCARD_BIT == 0 {
                self.head_len = len;
                return Some(self.data(offset + HEADER_LEN, len));
            }
            self.advance(len);
        }
    }

    /// Moves past the record `head` returned (call `head` first).
    pub fn take(&mut self) {
        self.advance(self.head_len);
    }

    fn advance(&mut self, len: usize) {
        self.pos = self.pos.wrapping_add((HEADER_LEN + len).next_multiple_of(8));
        // Producers get room back during a long drain.
        if self.pos.wrapping_sub(self.published) >= self.size / 8 {
            self.publish();
        }
    }

    /// Tells the kernel how far this reader has read.
    pub fn publish(&mut self) {
        if self.published != self.pos {
            // Release: the records' bytes are read before the kernel may
            // reuse their space.
            self.consumer_pos().store(self.pos, Ordering::Release);
            self.published = self.pos;
        }
    }

    /// `len` bytes at `offset` of the data pages (mapped twice, so a record
    /// starting below the size reads as one slice).
    fn data(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= 2 * self.size, "ring buffer slice out of bounds");
        // SAFETY: the producer mapping is page + 2 * size bytes, and the slice
        // ends within it (checked above).
        // The bytes are shared with the kernel, which does not write a
        // committed record until the consumer position has passed it.
        unsafe { std::slice::from_raw_parts(self.producer.ptr.cast::<u8>().add(self.page + offset), len) }
    }
}
