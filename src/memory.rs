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
