//! The heap trimming thread under the broker's allocator settings: freed blocks below the mmap
//! threshold stay resident in the heap until it runs, and then go back to the kernel.
#![cfg(all(target_os = "linux", target_env = "gnu"))]
#![allow(unsafe_code)] // mallopt

use std::time::{Duration, Instant};

use krait_protocol::budget::{GuardedAlloc, RETURNED_FROM, TRIM_EVERY, resident_bytes};

const MIB: usize = 1 << 20;
const BLOCKS: usize = 64;

#[test]
fn freed_heap_blocks_go_back_to_the_kernel_once_the_resident_size_passes_the_mark() {
    GuardedAlloc::return_large_blocks_to_the_kernel();
    // SAFETY: mallopt only sets an allocator parameter; the value is in range. The heap keeps
    // its freed top too, so only the trimming thread can give anything back.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, RETURNED_FROM as libc::c_int * 64) };
    // Blocks of 1 MiB, under the mmap threshold, each followed by a small one that stays, so
    // the heap cannot shrink from its top when the large ones are freed.
    let mut large = Vec::new();
    let mut pins = Vec::new();
    for i in 0..BLOCKS {
        large.push(vec![i as u8 | 1; MIB]);
        pins.push(vec![1u8; 64]);
    }
    let full = resident_bytes().unwrap();
    drop(large);
    let freed = resident_bytes().unwrap();
    assert!(
        full - freed < BLOCKS * MIB / 4,
        "freed heap blocks stay resident without trimming: {} MiB of {BLOCKS} returned",
        (full - freed) / MIB
    );

    GuardedAlloc::trim_above(freed / 2).unwrap();
    let deadline = Instant::now() + TRIM_EVERY * 10;
    let trimmed = loop {
        let now = resident_bytes().unwrap();
        if freed - now.min(freed) >= BLOCKS * MIB * 3 / 4 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        freed - trimmed.min(freed) >= BLOCKS * MIB * 3 / 4,
        "resident {} MiB after trimming, {} MiB before",
        trimmed / MIB,
        freed / MIB
    );
    assert_eq!(pins.len(), BLOCKS, "the small blocks are still in use");
}
