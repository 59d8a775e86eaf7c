//! How the process uses memory: the allocator's options and transparent huge
//! pages. The binary allocates with mimalloc (`main.rs`); the options below
//! are those of the mimalloc bundled with libmimalloc-sys 0.1.49 (its v3
//! `mimalloc.h`), set by their index in its enum of options. Each is set only
//! while it still holds that version's default, so another layout of the
//! enum is left alone, and only when the environment does not name it
//! (`MIMALLOC_*` always wins). In a process that allocates with something
//! else (the tests), setting them changes nothing.

/// One option of mimalloc's table: its index, its name in the environment,
/// and its default.
struct AllocatorOption {
    index: libmimalloc_sys::mi_option_t,
    env: &'static str,
    default: libc::c_long,
}

/// Milliseconds before freed memory goes back to the system (-1: never).
const PURGE_DELAY: AllocatorOption = AllocatorOption {
    index: 15,
    env: "MIMALLOC_PURGE_DELAY",
    default: 1000,
};

/// A thread's heap gives back its free pages every N allocations that take
/// the allocator's slow path.
const GENERIC_COLLECT: AllocatorOption = AllocatorOption {
    index: 34,
    env: "MIMALLOC_GENERIC_COLLECT",
    default: 10_000,
};

/// Sets `option` to `value`, unless the environment sets it or it holds
/// neither its default nor one of the values edgemeter sets (`ours`).
fn set(option: &AllocatorOption, ours: &[libc::c_long], value: libc::c_long) {
    if std::env::var_os(option.env).is_some() {
        return;
    }
    // SAFETY: these calls only read and write mimalloc's table of options,
    // which it reads afresh each time it uses one.
    unsafe {
        let current = libmimalloc_sys::mi_option_get(option.index);
        if current == option.default || ours.contains(&current) {
            libmimalloc_sys::mi_option_set(option.index, value);
        }
    }
}

/// Keeps freed memory for reuse instead of handing it back to the system after
/// a delay: the default of every command. Ingest frees and re-allocates a
/// batch's worth of buffers per batch; returned pages come back zero-filled
/// by the kernel, which cost a fifth of the CPU time in profiles.
pub fn keep_freed_memory() {
    set(&PURGE_DELAY, &[], -1);
}

/// The allocator side of `--low-memory` (`ingest`, `run`, `reingest`): freed
/// memory goes back to the system at once, each thread's heap gives back its
/// free pages ten times as often, and no memory is taken as huge pages. On the
/// ten-times benchmark set, with two batches in memory instead of three, this
/// took peak RSS from 276 to 210 MiB for 8% more time (`bench/RESULTS.md`,
/// "Low-memory mode").
pub(crate) fn return_freed_memory() {
    set(&PURGE_DELAY, &[-1], 0);
    set(&GENERIC_COLLECT, &[], 1000);
    without_huge_pages();
}

/// Turns transparent huge pages off for this process, as
/// `MIMALLOC_ALLOW_THP=0` would have mimalloc do (it sets the same flag at its
/// start). The flag covers memory touched from then on; `MIMALLOC_ALLOW_THP`
/// in the environment still wins.
#[cfg(target_os = "linux")]
pub fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; its
    // arguments are integers of the width the kernel reads.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn without_huge_pages() {}

/// Compressed log bytes from which an ingest run takes its memory as huge
/// pages. A run this large (four default batches) reuses its buffers batch
/// after batch, and huge pages made the few-large benchmark 14% faster (fewer
/// TLB misses). A smaller run, such as an hourly run of late files, mostly
/// touches fresh memory once: there the kernel zeroing 2 MiB pages, and
/// compacting memory to find them while the page cache is full, took its CPU
/// time from 0.35 to 0.6-0.75 s (`bench/RESULTS.md`, "Small runs").
pub(crate) const HUGE_PAGES_FROM_BYTES: u64 = 32 << 20;

/// Turns transparent huge pages back on for this process, for memory touched
/// from then on: an ingest run whose listing holds at least
/// [`HUGE_PAGES_FROM_BYTES`] (`ingest::ingest`). `MIMALLOC_ALLOW_THP` in the
/// environment still wins.
#[cfg(target_os = "linux")]
pub(crate) fn with_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    let unused: libc::c_ulong = 0;
    // SAFETY: as in `without_huge_pages`.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, unused, unused, unused, unused);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn with_huge_pages() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn huge_pages_disabled() -> libc::c_int {
        let unused: libc::c_ulong = 0;
        // SAFETY: PR_GET_THP_DISABLE only reads a flag of this process.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, unused, unused, unused, unused) }
    }

    /// The process flag the kernel reads follows both calls.
    #[test]
    fn huge_pages_go_off_and_back_on() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        without_huge_pages();
        assert_eq!(huge_pages_disabled(), 1);
        with_huge_pages();
        assert_eq!(huge_pages_disabled(), 0);
    }
}
