//! Fault injection for tests: a switch that cuts this broker off from chosen brokers, both ways,
//! as a network partition would. Shared by the broker's transport (fetches to a cut-off leader
//! fail at once) and its service (fetches from a cut-off follower are refused as unavailable).
//! Nothing is cut unless a test says so.

use krait_sync::RwLockExt;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use krait_image::BrokerId;

/// Test-only: the brokers this broker is cut off from.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<RwLock<BTreeSet<BrokerId>>>);

impl FaultSwitch {
    /// Cuts this broker off from exactly `brokers`.
    pub fn cut(&self, brokers: BTreeSet<BrokerId>) {
        *self.0.write_unpoisoned() = brokers;
    }

    /// Reconnects every broker.
    pub fn heal(&self) {
        self.cut(BTreeSet::new());
    }

    pub fn is_cut(&self, broker: BrokerId) -> bool {
        self.0.read_unpoisoned().contains(&broker)
    }
}
