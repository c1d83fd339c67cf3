//! A shared memory mapping of a BPF map's file descriptor (a ring buffer's
//! pages, a `BPF_F_MMAPABLE` array), unmapped on drop.

/// The size of a page, which mappings are made of.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// One shared mapping; its users hand out views of it only as borrows of themselves.
pub(super) struct Mapping {
    pub(super) ptr: *mut libc::c_void,
    pub(super) len: usize,
}

impl Mapping {
    pub(super) fn new(fd: i32, len: usize, offset: usize, prot: libc::c_int) -> std::io::Result<Self> {
        let offset =
            libc::off_t::try_from(offset).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh shared mapping of a file descriptor the caller keeps
        // open for the call; the kernel checks the length and offset against
        // the map's and fails otherwise.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, offset) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are exactly what mmap returned and took; nothing
        // borrows the mapping past its owner's life.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

// SAFETY: the mapping is plain shared memory; its owners (RingReader,
// PidFilter) hand out views of it only as borrows of themselves.
unsafe impl Send for Mapping {}
