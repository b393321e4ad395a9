//! A global allocator that keeps a hostile length prefix from aborting the broker.
//!
//! The codec library sizes arrays with `Vec::with_capacity(n)` for the `n` a request claims,
//! before reading any element. A garbage frame can claim two billion elements of a hundred
//! bytes each; the system allocator refuses that and Rust aborts the process. Allocations of
//! `HUGE` bytes or more are therefore served by an anonymous `mmap` with `MAP_NORESERVE`: the
//! kernel hands out address space only, pages are committed when touched, and the decoder runs
//! out of input (the frame is bounded by `--max-request-bytes`) long before it touches more
//! than a frame's worth. The request then fails to decode and the mapping is released.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// No legitimate allocation of the broker comes near this size.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

/// The broker's global allocator: the system allocator, except for huge requests.
#[derive(Debug)]
pub struct GuardedAlloc;

fn is_huge(size: usize, align: usize) -> bool {
    size >= HUGE && align <= PAGE
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: huge blocks come from mmap (page aligned, zeroed) and go back to munmap with the same
// size; every other block is the system allocator's, untouched.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout.size(), layout.align()) {
            map(layout.size())
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout.size(), layout.align()) {
            map(layout.size())
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout.size(), layout.align()) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_huge, new_huge) = (
            is_huge(layout.size(), layout.align()),
            is_huge(new_size, layout.align()),
        );
        if !old_huge && !new_huge {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees new_size with this alignment forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_allocations_reserve_address_space_only_and_can_be_used() {
        let layout = Layout::from_size_align(64 << 30, 8).unwrap();
        unsafe {
            let p = GuardedAlloc.alloc(layout);
            assert!(!p.is_null(), "64 GiB of address space must be available");
            *p = 7;
            *p.add((64 << 30) - 1) = 9;
            let q = GuardedAlloc.realloc(p, layout, 4096);
            assert_eq!(*q, 7);
            GuardedAlloc.dealloc(q, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
