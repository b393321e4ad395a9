//! The working assignment the balancing phases edit: replica lists in dense target brokers,
//! with per-broker replica counts and, per broker, its partitions ordered smallest first (the
//! order in which replicas are chosen to leave an overloaded broker).

use std::collections::BTreeSet;

use crate::topology::BrokerIx;

/// Index of a partition in (topic, partition) order.
pub(crate) type PartitionIx = usize;

#[derive(Debug)]
pub(crate) struct Assignment {
    replicas: Vec<Vec<BrokerIx>>,
    sizes: Vec<u64>,
    loads: Vec<usize>,
    hosted: Vec<BTreeSet<(u64, PartitionIx)>>,
}

impl Assignment {
    pub(crate) fn new(broker_count: usize, replicas: Vec<Vec<BrokerIx>>, sizes: Vec<u64>) -> Self {
        let mut loads = vec![0; broker_count];
        let mut hosted = vec![BTreeSet::new(); broker_count];
        for (p, brokers) in replicas.iter().enumerate() {
            for &b in brokers {
                loads[b] += 1;
                hosted[b].insert((sizes[p], p));
            }
        }
        Self {
            replicas,
            sizes,
            loads,
            hosted,
        }
    }

    pub(crate) fn load(&self, broker: BrokerIx) -> usize {
        self.loads[broker]
    }

    pub(crate) fn replicas(&self, partition: PartitionIx) -> &[BrokerIx] {
        &self.replicas[partition]
    }

    pub(crate) fn holds(&self, partition: PartitionIx, broker: BrokerIx) -> bool {
        self.replicas[partition].contains(&broker)
    }

    /// Partitions with a replica on `broker`, smallest first (ties in (topic, partition) order).
    pub(crate) fn hosted(&self, broker: BrokerIx) -> impl Iterator<Item = PartitionIx> + '_ {
        self.hosted[broker].iter().map(|&(_, p)| p)
    }

    /// Moves `partition`'s replica from `from` to `to`, keeping its slot in the replica list.
    pub(crate) fn move_replica(&mut self, partition: PartitionIx, from: BrokerIx, to: BrokerIx) {
        debug_assert!(!self.holds(partition, to), "replicas must stay distinct");
        let Some(slot) = self.replicas[partition].iter().position(|&b| b == from) else {
            debug_assert!(false, "moved a replica the broker does not hold");
            return;
        };
        self.replicas[partition][slot] = to;
        let key = (self.sizes[partition], partition);
        self.hosted[from].remove(&key);
        self.hosted[to].insert(key);
        self.loads[from] -= 1;
        self.loads[to] += 1;
    }

    pub(crate) fn into_replicas(self) -> Vec<Vec<BrokerIx>> {
        self.replicas
    }
}
