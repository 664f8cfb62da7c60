//! Giving memory back between jobs, so an idle agent holds only what its idle loop uses.
//!
//! Most of an idle agent's resident memory is pages of its own executable: a database job
//! runs driver, TLS and runtime code that the poll and heartbeat threads never touch, and
//! those pages stay mapped until something unmaps them. [`release`] drops them from the
//! process (they stay in the page cache; code that runs again faults them back in from
//! there) and returns freed heap to the system. [`limit_arenas`] keeps the allocator from
//! giving each of the agent's threads its own heap arena.
//!
//! Linux with glibc only; elsewhere both are no-ops.

/// One malloc arena for every thread: the agent's threads allocate little and rarely at
/// the same time, and each extra arena keeps its own free pages resident.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; called before the threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// After a job: unmaps the executable's read-only pages (code and constants, never written,
/// so the kernel reads them back from the file when needed) and trims the heap.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: see `drop_readonly_segments` and malloc_trim(3); neither invalidates memory
    // that any thread can observe.
    unsafe {
        drop_readonly_segments();
        libc::malloc_trim(0);
    }
}

/// MADV_DONTNEED on every PT_LOAD segment of the main program without the write flag.
/// Such a segment is a private file mapping that nobody ever wrote (relocations land in
/// writable segments, RELRO included), so dropping its pages loses nothing: the next
/// access reads the same bytes from the page cache.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn drop_readonly_segments() {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        _data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: glibc passes a valid dl_phdr_info whose dlpi_phdr has dlpi_phnum entries.
        let info = unsafe { &*info };
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        let page = page_size();
        for h in headers {
            if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
                continue;
            }
            let start = info.dlpi_addr as usize + h.p_vaddr as usize;
            let end = start + h.p_memsz as usize;
            // Whole pages inside the segment only: a page shared with a writable
            // segment's start would lose that segment's data.
            let first = start.div_ceil(page) * page;
            let last = end / page * page;
            if last > first {
                // SAFETY: the range lies inside a read-only file mapping of this program.
                unsafe {
                    libc::madvise(
                        first as *mut libc::c_void,
                        last - first,
                        libc::MADV_DONTNEED,
                    );
                }
            }
        }
        // The first object is the main program; shared libraries (there are none in the
        // static build) are left alone.
        1
    }
    // SAFETY: the callback only reads what glibc hands it.
    unsafe {
        libc::dl_iterate_phdr(Some(each), std::ptr::null_mut());
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropping the program's own code and constants from memory must leave it running
    /// with the same constants: the pages come back from the file.
    #[test]
    fn release_keeps_code_and_constants_working() {
        static TABLE: [u64; 4] = [0xdead_beef, 1, 2, 3];
        let before: u64 = TABLE.iter().sum();
        limit_arenas();
        let v: Vec<u8> = vec![7; 1 << 20];
        drop(v);
        release();
        release();
        assert_eq!(TABLE.iter().sum::<u64>(), before);
        assert_eq!(format!("{}", 42), "42");
    }
}
