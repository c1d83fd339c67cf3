//! A file descriptor the host can wait on for batches: an eventfd that
//! becomes readable when a batch is queued and when the queue closes.
//!
//! A host with its own event loop (the Go receiver parks its poller in Go's
//! netpoller) waits on it instead of blocking a thread inside `poll`: a
//! blocking call into the library pins an OS thread the host's runtime must
//! work around (Go hands the thread's processor to another thread while the
//! call lasts, and takes it back after). Created on first request, so hosts
//! that only call `poll` pay nothing, not even a write per batch.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use once_cell::sync::OnceCell;

#[derive(Debug, Default)]
pub struct ReadySignal {
    fd: OnceCell<OwnedFd>,
}

impl ReadySignal {
    /// The eventfd (created on the first call): non-blocking, close-on-exec.
    pub fn fd(&self) -> std::io::Result<RawFd> {
        self.fd
            .get_or_try_init(|| {
                // SAFETY: plain syscall with no pointer arguments.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: fd was just returned by eventfd and is owned by nothing else.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            })
            .map(AsRawFd::as_raw_fd)
    }

    /// Makes the fd readable, if a host asked for it. A full counter
    /// (2^64 - 2 unread signals) cannot happen; a failed write is ignored,
    /// as the fd is then readable already.
    pub fn signal(&self) {
        if let Some(fd) = self.fd.get() {
            let one: u64 = 1;
            // SAFETY: the fd is open for as long as self; `one` is 8 readable bytes.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fd: RawFd) -> Option<u64> {
        let mut v: u64 = 0;
        // SAFETY: fd is open; v is 8 writable bytes.
        let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        (n == 8).then_some(v)
    }

    #[test]
    fn readable_after_each_signal_until_read() {
        let r = ReadySignal::default();
        r.signal(); // before anyone asked: nothing to signal
        let fd = r.fd().unwrap();
        assert_eq!(r.fd().unwrap(), fd, "one fd per instance");
        assert_eq!(read(fd), None, "not readable before a signal");
        r.signal();
        r.signal();
        assert_eq!(read(fd), Some(2));
        assert_eq!(read(fd), None);
    }
}
