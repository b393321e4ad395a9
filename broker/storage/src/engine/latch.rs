//! An engine that takes itself offline at its first failed write, as Kafka takes a log
//! directory offline on an I/O error: a disk that failed once (full, read-only, gone) has left
//! a write half done or not done, so nothing more is written to it, every later write fails
//! with the first failure's reason, and the broker, which watches [`Failure`], stops.
//!
//! This module owns the latch only; it must not retry, and reads still go to the engine.

use std::sync::{Arc, OnceLock};

use super::{Engine, EngineError, Entry, Space, WriteSet};

/// The first write failure of a store, once there is one. Shared by the engine that trips it
/// and whoever watches it.
#[derive(Debug, Default)]
pub struct Failure(OnceLock<String>);

impl Failure {
    /// Why the store stopped writing, once it has.
    pub fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    fn trip(&self, why: &EngineError) {
        if self.0.set(why.to_string()).is_ok() {
            tracing::error!(error = %why, "a storage write failed: the data directory is offline");
        }
    }
}

/// Wraps an engine so that its first failed write latches [`Failure`].
#[derive(Debug)]
pub(crate) struct Latched {
    pub(crate) inner: Arc<dyn Engine>,
    pub(crate) failure: Arc<Failure>,
}

impl Engine for Latched {
    fn stats(&self) -> Option<super::EngineStats> {
        self.inner.stats()
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(space, key)
    }

    fn reclaim(&self, min_bytes: u64) -> Result<Option<super::Reclaimed>, EngineError> {
        self.inner.reclaim(min_bytes)
    }

    fn write(&self, write: WriteSet, sync: bool) -> Result<(), EngineError> {
        if let Some(why) = self.failure.reason() {
            return Err(EngineError(format!(
                "the data directory is offline after an earlier write failed: {why}"
            )));
        }
        self.inner
            .write(write, sync)
            .inspect_err(|e| self.failure.trip(e))
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.inner.scan(space, from, to, visit)
    }

    fn last(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Option<Entry>, EngineError> {
        self.inner.last(space, from, to)
    }

    fn floor(
        &self,
        space: Space,
        lower: &[u8],
        key: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), EngineError> {
        self.inner.floor(space, lower, key, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemoryEngine;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A memory engine whose writes fail while `broken` is set.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryEngine,
        broken: AtomicBool,
    }

    impl Engine for Flaky {
        fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
            self.inner.get(space, key)
        }
        fn write(&self, write: WriteSet, sync: bool) -> Result<(), EngineError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(EngineError::new("IO error: No space left on device"));
            }
            self.inner.write(write, sync)
        }
        fn scan(
            &self,
            space: Space,
            from: &[u8],
            to: Option<&[u8]>,
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), EngineError> {
            self.inner.scan(space, from, to, visit)
        }
        fn last(
            &self,
            space: Space,
            from: &[u8],
            to: Option<&[u8]>,
        ) -> Result<Option<Entry>, EngineError> {
            self.inner.last(space, from, to)
        }
        fn floor(
            &self,
            space: Space,
            lower: &[u8],
            key: &[u8],
            visit: &mut dyn FnMut(&[u8], &[u8]),
        ) -> Result<(), EngineError> {
            self.inner.floor(space, lower, key, visit)
        }
    }

    fn put(key: &[u8]) -> WriteSet {
        let mut write = WriteSet::default();
        write.put(Space::Meta, key, b"v");
        write
    }

    #[test]
    fn the_first_failed_write_takes_the_engine_offline_for_good() {
        let flaky = Arc::new(Flaky::default());
        let failure = Arc::new(Failure::default());
        let engine = Latched {
            inner: flaky.clone(),
            failure: failure.clone(),
        };
        engine.write(put(b"a"), false).unwrap();
        assert_eq!(failure.reason(), None);

        flaky.broken.store(true, Ordering::SeqCst);
        assert!(engine.write(put(b"b"), false).is_err());
        assert!(failure.reason().unwrap().contains("No space left"));

        // The disk recovers, but the store does not write again: the failed write may have
        // left things half done.
        flaky.broken.store(false, Ordering::SeqCst);
        let again = engine.write(put(b"c"), false).unwrap_err();
        assert!(again.to_string().contains("offline"), "{again}");
        assert_eq!(engine.get(Space::Meta, b"c").unwrap(), None);
        assert_eq!(engine.get(Space::Meta, b"a").unwrap(), Some(b"v".to_vec()));
    }
}
