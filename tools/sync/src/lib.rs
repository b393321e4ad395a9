//! The one poison-tolerant way to take a `std` lock, for every crate of the broker, the
//! operator and the CLI; and the one way async code runs work that blocks its thread
//! ([`blocking`]).
//!
//! A lock is poisoned when a thread panicked while holding it. Krait's critical sections
//! replace shared state only after the fallible work succeeds (or hold counters and caches that
//! are consistent at every step), so a poisoned lock still guards consistent data, and refusing
//! it would turn one panicked request into a broker that can serve no one. A critical section
//! that cannot promise that must not use these.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `Mutex::lock`, ignoring poisoning.
pub trait MutexExt<T: ?Sized> {
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> MutexExt<T> for Mutex<T> {
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `RwLock::read` and `RwLock::write`, ignoring poisoning.
pub trait RwLockExt<T: ?Sized> {
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `work` that blocks its thread (RocksDB reads and writes, an fsync, decompressing a
/// batch) from async code. On a multi-thread runtime the worker first hands its other tasks to
/// another worker (`tokio::task::block_in_place`), so connections and timers on it are not
/// stalled behind a slow disk; elsewhere (a current-thread runtime in tests, no runtime) it
/// runs inline.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panicking_holder_is_still_taken_with_its_data() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let rw = std::sync::Arc::new(RwLock::new(2));
        let (m, r) = (mutex.clone(), rw.clone());
        let _ = std::thread::spawn(move || {
            let _m = m.lock().unwrap();
            let _r = r.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(mutex.is_poisoned() && rw.is_poisoned());
        *mutex.lock_unpoisoned() += 1;
        *rw.write_unpoisoned() += 1;
        assert_eq!((*mutex.lock_unpoisoned(), *rw.read_unpoisoned()), (2, 3));
    }

    #[test]
    fn blocking_runs_inline_without_a_runtime_and_on_a_current_thread_one() {
        assert_eq!(super::blocking(|| 1 + 1), 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { super::blocking(|| 3) }), 3);
    }

    #[test]
    fn blocking_leaves_the_other_tasks_of_a_multi_thread_runtime_running() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let on_the_worker = rt.spawn(async {
            let (tx, rx) = std::sync::mpsc::channel();
            // With one worker, the second task runs only if `blocking` gave the worker up.
            tokio::spawn(async move { tx.send(()).unwrap() });
            super::blocking(|| rx.recv_timeout(std::time::Duration::from_secs(10)))
        });
        let waited = rt.block_on(on_the_worker).unwrap();
        assert!(waited.is_ok(), "the other task ran while this one blocked");
    }
}
