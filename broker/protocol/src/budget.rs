//! Decoding a request within a memory budget that its size sets, and the allocator that
//! enforces it.
//!
//! The `kafka-protocol` decoders size an array with `Vec::with_capacity(n)`, and a string or
//! byte field with `vec![0; n]`, for the `n` the request claims, before they read any element.
//! A 30-byte frame can claim four billion elements of a hundred bytes each. Checking the claim
//! would take the schema of every API and version; the allocator can check the result instead:
//!
//! - [`decode_within`] runs a decoder in a *scope*: the frame's length sets a budget
//!   ([`budget`]), and every allocation the thread makes while the scope is open counts against
//!   it. A well-formed request fits: each element the crate decodes takes at least one byte of
//!   the frame and at most [`BYTES_PER_FRAME_BYTE`] bytes of memory.
//! - An allocation of [`RESERVATION_MIN`] bytes or more that would go over the budget is not
//!   served. [`GuardedAlloc`] hands out an inaccessible reservation (`PROT_NONE`): address space
//!   the kernel neither commits nor charges, under strict overcommit (`vm.overcommit_memory=2`)
//!   and `RLIMIT_DATA` alike. The scope is marked exceeded.
//! - The frame's buffer ([`Budgeted`]) then reports no bytes left, so the decoder's next read
//!   fails before it writes an element; the error path drops the reservation, and the request
//!   is refused as malformed.
//!
//! Smaller allocations are always served (an error being built, a map node): a decoder only
//! keeps one unfinished array per nesting level, so they cannot add up.
//!
//! The scope is per thread, and the decoders are synchronous: a scope never spans an `.await`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::buf::ByteBuf;

/// Memory a decoded request may take per byte of its frame. The worst well-formed case is an
/// array of empty compact strings: one byte each on the wire, 32 bytes each decoded (see the
/// tests, which decode such requests).
pub const BYTES_PER_FRAME_BYTE: usize = 64;
/// Memory any request may take, whatever its size: headers, maps of unknown tagged fields.
pub const BASE_BUDGET: usize = 256 << 10;
/// Allocations below this size are served even over the budget (see the module comment).
pub const RESERVATION_MIN: usize = 64 << 10;
const PAGE: usize = 4096;

/// The budget for decoding `frame_len` bytes.
pub fn budget(frame_len: usize) -> usize {
    BASE_BUDGET.saturating_add(frame_len.saturating_mul(BYTES_PER_FRAME_BYTE))
}

/// This thread's open scope: `limit` 0 when none is open.
struct Scope {
    limit: Cell<usize>,
    used: Cell<usize>,
    exceeded: Cell<bool>,
}

thread_local! {
    // Const-initialised and without a destructor: safe to read from inside the allocator.
    static SCOPE: Scope = const {
        Scope { limit: Cell::new(0), used: Cell::new(0), exceeded: Cell::new(false) }
    };
}

/// Counts `size` bytes against the open scope; `false` when they must not be served.
fn charge(size: usize) -> bool {
    SCOPE
        .try_with(|s| {
            let limit = s.limit.get();
            if limit == 0 {
                return true;
            }
            let used = s.used.get().saturating_add(size);
            if used > limit && size >= RESERVATION_MIN {
                s.exceeded.set(true);
                return false;
            }
            s.used.set(used);
            true
        })
        .unwrap_or(true)
}

/// Counts `size` bytes against the open scope, whatever it leaves.
fn count(size: usize) {
    let _ = SCOPE.try_with(|s| {
        if s.limit.get() != 0 {
            s.used.set(s.used.get().saturating_add(size));
        }
    });
}

fn exceeded() -> bool {
    SCOPE.try_with(|s| s.exceeded.get()).unwrap_or(false)
}

/// The request claims more than its bytes can hold: why a budgeted decode failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request claims more than its {frame_len} bytes can hold (its decoding asked for over {limit} bytes)"
)]
pub struct OverBudget {
    pub frame_len: usize,
    pub limit: usize,
}

/// Decodes a `T` at `version` from `frame` within [`budget`]`(frame.len())`, leaving `frame`
/// holding what the decoder did not consume. Only the codec's own decoders run inside: they read
/// nothing but the frame, so none writes to a reservation (its first read after one fails).
pub fn decode_within<T: Decodable>(frame: &mut Bytes, version: i16) -> anyhow::Result<T> {
    decode_within_using(frame, |buf| T::decode(buf, version))
}

/// [`decode_within`] with another decoder than `T`'s own: `decode` must read nothing but the
/// buffer it is given.
pub fn decode_within_using<T>(
    frame: &mut Bytes,
    decode: impl FnOnce(&mut Budgeted) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let frame_len = frame.len();
    let limit = budget(frame_len);
    let outer = SCOPE.with(|s| {
        let outer = (s.limit.get(), s.used.get(), s.exceeded.get());
        s.limit.set(limit);
        s.used.set(0);
        s.exceeded.set(false);
        outer
    });
    let mut buf = Budgeted {
        inner: std::mem::take(frame),
    };
    let result = decode(&mut buf);
    *frame = buf.inner;
    // Scopes nest (a decoder never opens one, but a caller might): the inner one's allocations
    // count in the outer one too.
    let over = SCOPE.with(|s| {
        let (limit, used, exceeded) = outer;
        let over = s.exceeded.get();
        s.limit.set(limit);
        s.used.set(used.saturating_add(s.used.get()));
        s.exceeded.set(exceeded);
        over
    });
    if over {
        // A decoder that read nothing after the refused allocation may still return a value
        // holding it: dropped here, never used.
        drop(result);
        return Err(OverBudget { frame_len, limit }.into());
    }
    result
}

/// A frame being decoded within a budget: the frame's bytes, until the budget is exceeded;
/// then none, so the decoder's next read fails.
#[derive(Debug)]
pub struct Budgeted {
    inner: Bytes,
}

impl Buf for Budgeted {
    fn remaining(&self) -> usize {
        if exceeded() {
            0
        } else {
            self.inner.remaining()
        }
    }

    fn chunk(&self) -> &[u8] {
        if exceeded() { &[] } else { self.inner.chunk() }
    }

    fn advance(&mut self, cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of the frame");
        self.inner.advance(cnt)
    }
}

impl ByteBuf for Budgeted {
    fn peek_bytes(&mut self, r: Range<usize>) -> Bytes {
        assert!(r.end <= self.remaining(), "peek past the end of the frame");
        self.inner.slice(r)
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        assert!(size <= self.remaining(), "read past the end of the frame");
        self.inner.split_to(size)
    }
}

/// Reservations handed out and not yet released, so `dealloc` can tell them from the system
/// allocator's blocks. Only a decoder being refused holds one, briefly: one per thread at most
/// in practice, far fewer than the slots.
static RESERVED: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
static LIVE_RESERVATIONS: AtomicUsize = AtomicUsize::new(0);

/// Reservations not yet released (zero once every refused decode has unwound).
pub fn live_reservations() -> usize {
    LIVE_RESERVATIONS.load(Ordering::Acquire)
}

fn reserve(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    // PROT_NONE: not writable, so the kernel neither commits nor accounts it.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    for slot in &RESERVED {
        if slot
            .compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            LIVE_RESERVATIONS.fetch_add(1, Ordering::AcqRel);
            return p.cast();
        }
    }
    // SAFETY: the mapping was just made with this size and nothing refers to it.
    unsafe { libc::munmap(p, size) };
    ptr::null_mut()
}

/// Releases `ptr` if it is a reservation; `false` if it is the system allocator's.
fn release(ptr: *mut u8, size: usize) -> bool {
    if LIVE_RESERVATIONS.load(Ordering::Acquire) == 0 {
        return false;
    }
    for slot in &RESERVED {
        if slot
            .compare_exchange(ptr as usize, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            LIVE_RESERVATIONS.fetch_sub(1, Ordering::AcqRel);
            // SAFETY: `ptr` was mapped by `reserve` with this size (the layout it was served for).
            unsafe { libc::munmap(ptr.cast(), size) };
            return true;
        }
    }
    false
}

/// The broker's global allocator: the system allocator, except that an allocation that would
/// take a decoding request over its budget gets a reservation instead (module comment).
#[derive(Debug)]
pub struct GuardedAlloc;

/// Blocks at least this large are mappings of their own, returned to the kernel when freed.
pub const RETURNED_FROM: usize = 4 << 20;

impl GuardedAlloc {
    /// Tunes glibc's malloc, which serves every block, for buffers of up to tens of MiB that
    /// come and go (fetch responses, produce batches). By default glibc raises its mmap
    /// threshold to the largest block freed so far (up to 32 MiB), after which such buffers come
    /// from the heap and stay in the process once freed, and it keeps up to eight heaps per core,
    /// each holding on to what its threads freed: after one burst of large fetches the broker
    /// kept 140 MiB it no longer used. A fixed threshold of [`RETURNED_FROM`] and two heaps keep
    /// the resident size near what is in use. Malloc tunables in `GLIBC_TUNABLES` win: the
    /// process then keeps what they say. Call it first thing in `main`, before threads.
    pub fn return_large_blocks_to_the_kernel() {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters; both are documented and in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, RETURNED_FROM as libc::c_int);
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }

    /// Starts a thread that gives the heap's free pages back to the kernel (`malloc_trim`)
    /// whenever the process's resident size is above `bytes`, checking every [`TRIM_EVERY`].
    /// Blocks under [`RETURNED_FROM`] come from the heap, and a heap can give back only its top:
    /// under eight producers of 1 KB records, free pages between blocks still in use held the
    /// resident size 20-40 MiB above what was in use. A lower mmap threshold would return them
    /// too, but makes every produce buffer fresh pages, each a page fault: it halved 1 KB
    /// produce. Trimming once a second costs a fault only for what was free at that moment.
    pub fn trim_above(bytes: usize) -> std::io::Result<()> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            std::thread::Builder::new()
                .name("krait-trim".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TRIM_EVERY);
                        if resident_bytes().is_some_and(|rss| rss > bytes) {
                            // SAFETY: malloc_trim only returns free heap pages to the kernel.
                            unsafe { libc::malloc_trim(0) };
                        }
                    }
                })?;
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = bytes;
        Ok(())
    }
}

/// How often [`GuardedAlloc::trim_above`] looks at the resident size.
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The process's resident size, from `/proc/self/statm` (its second field, in pages).
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE)
}

// SAFETY: every block is the system allocator's, except reservations: page-aligned mappings of
// the layout's size, never readable or writable (the scope's buffer fails every read first),
// unmapped by `dealloc` with that size.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PAGE && !charge(layout.size()) {
            return reserve(layout.size());
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PAGE && !charge(layout.size()) {
            return reserve(layout.size());
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !release(ptr, layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let reserved = LIVE_RESERVATIONS.load(Ordering::Acquire) != 0
            && RESERVED
                .iter()
                .any(|s| s.load(Ordering::Acquire) == ptr as usize);
        if !reserved {
            // A grown block keeps what was written to it, so it is always served (and counted):
            // the decoders size their arrays once and never grow them.
            count(new_size.saturating_sub(layout.size()));
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees new_size with this alignment forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // Nothing was ever written to a reservation: there is nothing to copy.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            release(ptr, layout.size());
        }
        new
    }
}
