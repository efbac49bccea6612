//! Host memory policy of the processes: keep freed memory instead of handing it back to the
//! kernel after every frame.
//!
//! glibc's malloc returns large freed blocks to the kernel: blocks above the mmap threshold
//! are unmapped on free, and a thread's arena gives its free top back (`MADV_DONTNEED`) once
//! it exceeds the trim threshold. A per-frame pipeline frees and allocates the same few
//! megabytes every frame (input tensors, voxels, activations), so every frame faulted them
//! back in page by page: under `perf`, madvise and page faults were a tenth of the node's
//! inference-thread samples, and with the thresholds raised the tiny model's forward in
//! `altermoma bench node` went from 75-82 to 62 ms (README, *Benchmark: altermoma bench node*).
//!
//! A thread's arena also unmaps a whole heap (64 MiB of address space) as soon as every block
//! in it is free, whatever the trim threshold, unless the heap before it has less than the top
//! pad free. The node's receiving thread is where the middleware allocates the camera
//! messages (six 4.3 MB images per frame at 1600x900): its arena's newest heap emptied and
//! went back to the kernel every few frames, so the next images were written into fresh
//! pages. Under `perf` a quarter of that thread's samples were page faults and `munmap`
//! (`heap_trim` from freeing an image), and its time per frame varied from 3.6 to 5.1 ms.
//!
//! [`retain_freed_memory`] raises both thresholds and sets the top pad to a heap's size, so
//! freed blocks and emptied heaps are reused by the next frame (receiving: 2.6-2.7 ms per
//! frame; README, *Emptied heaps are kept*). Resident memory then stays at its high-water
//! mark (the node's is reached in the warm-up) instead of rising and falling every frame; the
//! top pad adds address space, not resident memory. A `MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_` or `GLIBC_TUNABLES` set in the environment is
//! left in charge.

/// Largest block served from the heap rather than mapped on its own (glibc's maximum on
/// 64-bit systems: half of a thread arena's 64 MiB heap).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at a heap's top kept rather than trimmed.
pub const TRIM_THRESHOLD: usize = 1 << 30;
/// Free space kept at the top of an arena: a thread arena's whole heap (64 MiB on 64-bit
/// glibc), so that an emptied heap is never unmapped.
pub const TOP_PAD: usize = 64 << 20;

/// What [`retain_freed_memory`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// Thresholds raised.
    Retain,
    /// The environment configures malloc; nothing changed (names the variable).
    LeftToEnvironment(String),
    /// Not glibc, or glibc refused a value.
    Unsupported(String),
}

/// Keep freed host memory in the process (see the module documentation). Call once, early;
/// what was done is logged at debug level.
pub fn retain_freed_memory() -> MemoryPolicy {
    let policy = policy_from_environment().unwrap_or_else(set_thresholds);
    tracing::debug!("host memory policy: {policy:?}");
    policy
}

/// `LeftToEnvironment` when the environment configures malloc's thresholds.
fn policy_from_environment() -> Option<MemoryPolicy> {
    for var in ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"] {
        if std::env::var_os(var).is_some() {
            return Some(MemoryPolicy::LeftToEnvironment(var.into()));
        }
    }
    std::env::var("GLIBC_TUNABLES")
        .is_ok_and(|t| t.contains("glibc.malloc."))
        .then(|| MemoryPolicy::LeftToEnvironment("GLIBC_TUNABLES".into()))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> MemoryPolicy {
    for (name, param, value) in [
        ("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("M_TRIM_THRESHOLD", libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ("M_TOP_PAD", libc::M_TOP_PAD, TOP_PAD),
    ] {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is thread-safe.
        if unsafe { libc::mallopt(param, value as libc::c_int) } != 1 {
            return MemoryPolicy::Unsupported(format!("glibc refused {name} = {value}"));
        }
    }
    MemoryPolicy::Retain
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> MemoryPolicy {
    MemoryPolicy::Unsupported("not glibc".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether glibc maps a block of `bytes` on its own: the IS_MMAPPED bit (0x2) of the
    /// chunk's size word, in the 8 bytes before the block (glibc's malloc chunk layout).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn mapped_on_its_own(bytes: usize) -> bool {
        // SAFETY: a live block from malloc, freed right after; the pointer goes through
        // black_box so that the compiler neither elides the allocation nor reasons about the
        // read of glibc's header word.
        unsafe {
            let p = std::hint::black_box(libc::malloc(bytes) as *const usize);
            assert!(!p.is_null(), "malloc({bytes}) failed");
            let mapped = *p.sub(1) & 0x2 != 0;
            libc::free(p as *mut libc::c_void);
            mapped
        }
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_thresholds_and_serves_large_blocks_from_the_heap() {
        if policy_from_environment().is_some() {
            return; // the environment decides, and nothing is changed
        }
        assert_eq!(retain_freed_memory(), MemoryPolicy::Retain);
        // glibc's default threshold (128 KiB, raised only by freeing mapped blocks, at most to
        // 32 MiB) maps a 16 MiB block on its own; now it comes from the heap, where a freed
        // block is reused instead of unmapped
        assert!(!mapped_on_its_own(16 << 20), "a 16 MiB block was still mapped on its own");
        assert!(mapped_on_its_own(64 << 20), "a 64 MiB block (above any threshold) is mapped");
    }

    /// A thread that fills three of its arena's heaps and frees everything leaves the memory
    /// with the process (glibc counts it in `mallinfo2().arena`) instead of unmapping the
    /// emptied heaps.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_thread_arena_keeps_its_emptied_heaps() {
        if policy_from_environment().is_some() {
            return;
        }
        assert_eq!(retain_freed_memory(), MemoryPolicy::Retain);
        let (held, after) = std::thread::spawn(|| {
            // 12 blocks of 12 MiB (under the mmap threshold: served from heaps of 64 MiB)
            let blocks: Vec<Vec<u8>> = (0..12).map(|k| vec![k as u8 + 1; 12 << 20]).collect();
            // SAFETY: mallinfo2 only reads malloc's statistics
            let held = unsafe { libc::mallinfo2() }.arena;
            drop(std::hint::black_box(blocks));
            (held, unsafe { libc::mallinfo2() }.arena)
        })
        .join()
        .expect("the allocating thread");
        assert!(held >= 144 << 20, "the blocks came from heaps: {held} bytes");
        assert!(after + (32 << 20) > held, "emptied heaps were unmapped: {held} -> {after} bytes");
    }
}
