//! The in-memory engine: one ordered map per key space behind one lock. For handler tests,
//! tools and fuzzing; it keeps nothing across the process's end, whatever `sync` says.

use krait_sync::RwLockExt;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard};

use super::{Engine, EngineError, Entry, Op, Space, WriteSet};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
pub struct MemoryEngine {
    spaces: RwLock<BTreeMap<Space, Map>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Space, Map>> {
        // Nothing under the write lock panics short of allocation failure, which aborts, so a
        // poisoned lock still guards consistent maps.
        self.spaces.read_unpoisoned()
    }
}

/// The entries with `from <= key` and below `to`; empty when the bounds are inverted, where
/// `BTreeMap::range` would panic.
fn range<'a>(
    map: Option<&'a Map>,
    from: &[u8],
    to: Bound<&[u8]>,
) -> impl DoubleEndedIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> {
    let empty = match to {
        Bound::Included(to) => from > to,
        Bound::Excluded(to) => from >= to,
        Bound::Unbounded => false,
    };
    let bounds = (Bound::Included(from.to_vec()), to.map(<[u8]>::to_vec));
    map.filter(|_| !empty)
        .into_iter()
        .flat_map(move |m| m.range(bounds.clone()))
}

fn upper(to: Option<&[u8]>) -> Bound<&[u8]> {
    to.map_or(Bound::Unbounded, Bound::Excluded)
}

impl Engine for MemoryEngine {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.read().get(&space).and_then(|m| m.get(key)).cloned())
    }

    fn write(&self, write: WriteSet, _sync: bool) -> Result<(), EngineError> {
        let mut spaces = self.spaces.write_unpoisoned();
        for op in write.into_ops() {
            match op {
                Op::Put { space, key, value } => {
                    spaces.entry(space).or_default().insert(key, value);
                }
                Op::Delete { space, key } => {
                    spaces.entry(space).or_default().remove(&key);
                }
                Op::DeleteRange { space, from, to } => {
                    if from < to {
                        let map = spaces.entry(space).or_default();
                        let mut tail = map.split_off(&from);
                        let mut kept = tail.split_off(&to);
                        map.append(&mut kept);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        let spaces = self.read();
        for (k, v) in range(spaces.get(&space), from, upper(to)) {
            if !visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn last(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Option<Entry>, EngineError> {
        let spaces = self.read();
        Ok(range(spaces.get(&space), from, upper(to))
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn floor(
        &self,
        space: Space,
        lower: &[u8],
        key: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), EngineError> {
        let spaces = self.read();
        if let Some((k, v)) = range(spaces.get(&space), lower, Bound::Included(key)).next_back() {
            visit(k, v);
        }
        Ok(())
    }
}
