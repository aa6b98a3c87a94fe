//! The server's memory allocator, jemalloc, and its statistics for `/metrics`.
//!
//! The binary installs [`Jemalloc`] as its global allocator, and C libraries
//! (SQLite, libpq) allocate through it too. Against the C library's allocator,
//! it cut the server's time spent allocating (`docs/benchmarks.md`).

pub use tikv_jemallocator::Jemalloc;

/// Memory of the allocator, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes of live allocations.
    pub allocated: u64,
    /// Bytes of memory the allocator keeps resident: live data, its metadata and
    /// freed pages it has not yet returned to the system.
    pub resident: u64,
}

/// Reads jemalloc's counters, or `None` when jemalloc is not the process's
/// allocator (tests and tools that link this library keep their own), in
/// which case its counters stay at zero.
pub fn heap_stats() -> Option<HeapStats> {
    use tikv_jemalloc_ctl::{epoch, stats};

    // The counters are cached and refreshed only when the epoch advances.
    epoch::advance().ok()?;
    let allocated = stats::allocated::read().ok()?;
    let resident = stats::resident::read().ok()?;
    (allocated > 0).then_some(HeapStats { allocated: allocated as u64, resident: resident as u64 })
}
