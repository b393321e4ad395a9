//! The target brokers and their racks, renumbered densely so the planning phases index
//! vectors instead of maps. Dense numbers follow ascending broker id, racks ascending name.

use std::collections::{BTreeMap, BTreeSet};

/// Dense index of a target broker.
pub(crate) type BrokerIx = usize;
/// Dense index of a rack among the target brokers.
pub(crate) type RackIx = usize;

#[derive(Debug)]
pub(crate) struct Topology {
    ids: Vec<i32>,
    index: BTreeMap<i32, BrokerIx>,
    rack_of: Vec<RackIx>,
    members: Vec<Vec<BrokerIx>>,
}

impl Topology {
    /// `racks` must name every broker in `target`. Brokers without a rack share one rack.
    pub(crate) fn new(racks: &BTreeMap<i32, Option<String>>, target: &BTreeSet<i32>) -> Self {
        let ids: Vec<i32> = target.iter().copied().collect();
        let rack_names: BTreeSet<&Option<String>> = ids.iter().map(|id| &racks[id]).collect();
        let rack_index: BTreeMap<&Option<String>, RackIx> = rack_names
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r, i))
            .collect();
        let rack_of: Vec<RackIx> = ids.iter().map(|id| rack_index[&racks[id]]).collect();
        let mut members = vec![Vec::new(); rack_index.len()];
        for (broker, &rack) in rack_of.iter().enumerate() {
            members[rack].push(broker);
        }
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        Self {
            ids,
            index,
            rack_of,
            members,
        }
    }

    pub(crate) fn broker_count(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn rack_count(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn id(&self, broker: BrokerIx) -> i32 {
        self.ids[broker]
    }

    /// The dense index of `id`, or `None` when it is not a target broker.
    pub(crate) fn dense(&self, id: i32) -> Option<BrokerIx> {
        self.index.get(&id).copied()
    }

    pub(crate) fn rack_of(&self, broker: BrokerIx) -> RackIx {
        self.rack_of[broker]
    }

    /// Target brokers in `rack`, ascending.
    pub(crate) fn members(&self, rack: RackIx) -> &[BrokerIx] {
        &self.members[rack]
    }

    /// How many distinct racks a partition with `replication_factor` replicas must span.
    pub(crate) fn required_spread(&self, replication_factor: usize) -> usize {
        replication_factor.min(self.rack_count())
    }

    /// Distinct racks among `brokers`.
    pub(crate) fn spread(&self, brokers: impl IntoIterator<Item = BrokerIx>) -> usize {
        let mut racks: Vec<RackIx> = brokers.into_iter().map(|b| self.rack_of[b]).collect();
        racks.sort_unstable();
        racks.dedup();
        racks.len()
    }

    /// How many of `brokers` sit in `rack`.
    pub(crate) fn count_in_rack(&self, brokers: &[BrokerIx], rack: RackIx) -> usize {
        brokers.iter().filter(|&&b| self.rack_of[b] == rack).count()
    }
}
