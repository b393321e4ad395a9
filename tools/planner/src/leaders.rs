//! Phase 3, leader balance by reordering replica lists only: no data moves here.
//!
//! Each partition's preferred leader may be any of its replicas. Leadership shifts along
//! paths: broker `x0` hands a partition to `x1`, which hands another to `x2`, ... so only the
//! ends change their leader counts. A path from a broker with `L` leaders to one with at most
//! `L - 2` narrows the spread; with none left, the counts are an optimal semi-matching: no
//! reordering lowers the busiest broker's count or the sum of squared counts, so whenever some
//! ordering balances leaders to within one, this one does. Shortest paths keep the number of
//! reordered partitions low.
//!
//! Brokers are settled level by level: the brokers reachable from the busiest ones, once no
//! path from there helps, can never help later (nothing leaves that set), so they are frozen.

use std::collections::{BTreeSet, VecDeque};

use crate::assignment::PartitionIx;
use crate::topology::BrokerIx;

/// Leader counts plus, for each (leader, follower) pair, the partitions that leader could
/// hand to that follower.
struct LeaderGraph {
    brokers: usize,
    leaders: Vec<usize>,
    handoffs: Vec<BTreeSet<PartitionIx>>,
}

impl LeaderGraph {
    fn new(brokers: usize, replicas: &[Vec<BrokerIx>]) -> Self {
        let mut graph = Self {
            brokers,
            leaders: vec![0; brokers],
            handoffs: vec![BTreeSet::new(); brokers * brokers],
        };
        for (partition, list) in replicas.iter().enumerate() {
            if let Some(&leader) = list.first() {
                graph.leaders[leader] += 1;
                graph.link(partition, list, true);
            }
        }
        graph
    }

    /// Adds (or removes) `partition`'s handoff edges from its current leader.
    fn link(&mut self, partition: PartitionIx, list: &[BrokerIx], add: bool) {
        let leader = list[0];
        for &follower in &list[1..] {
            let edges = &mut self.handoffs[leader * self.brokers + follower];
            if add {
                edges.insert(partition);
            } else {
                edges.remove(&partition);
            }
        }
    }

    fn can_hand(&self, from: BrokerIx, to: BrokerIx) -> bool {
        !self.handoffs[from * self.brokers + to].is_empty()
    }

    /// Makes `to` the preferred leader of one partition `from` leads, by swapping the two in
    /// the replica list.
    fn hand_over(&mut self, from: BrokerIx, to: BrokerIx, replicas: &mut [Vec<BrokerIx>]) {
        let edges = &self.handoffs[from * self.brokers + to];
        let Some(&partition) = edges.first() else {
            return;
        };
        self.link(partition, &replicas[partition], false);
        let list = &mut replicas[partition];
        if let Some(slot) = list.iter().position(|&b| b == to) {
            list.swap(0, slot);
        }
        self.link(partition, &replicas[partition], true);
        self.leaders[from] -= 1;
        self.leaders[to] += 1;
    }
}

pub(crate) fn balance_leaders(brokers: usize, replicas: &mut [Vec<BrokerIx>]) {
    let mut graph = LeaderGraph::new(brokers, replicas);
    let mut frozen = vec![false; brokers];
    loop {
        let Some(level) = (0..brokers)
            .filter(|&b| !frozen[b])
            .map(|b| graph.leaders[b])
            .max()
        else {
            return;
        };
        let search = Search::run(&graph, &frozen, level);
        match search.path_to_relief(&graph, level) {
            Some(path) => {
                // Hand over from the far end first, so no partition is handed twice.
                for hop in path.windows(2).rev() {
                    graph.hand_over(hop[0], hop[1], replicas);
                }
            }
            None => {
                for (broker, reached) in search.parent.iter().enumerate() {
                    if reached.is_some() {
                        frozen[broker] = true;
                    }
                }
            }
        }
    }
}

/// Breadth-first search over handoff edges from every unfrozen broker leading `level`
/// partitions.
struct Search {
    /// `Some(parent)` for reached brokers; a source is its own parent.
    parent: Vec<Option<BrokerIx>>,
    distance: Vec<usize>,
}

impl Search {
    fn run(graph: &LeaderGraph, frozen: &[bool], level: usize) -> Self {
        let brokers = graph.brokers;
        let mut search = Self {
            parent: vec![None; brokers],
            distance: vec![usize::MAX; brokers],
        };
        let mut queue = VecDeque::new();
        for source in (0..brokers).filter(|&b| !frozen[b] && graph.leaders[b] == level) {
            search.parent[source] = Some(source);
            search.distance[source] = 0;
            queue.push_back(source);
        }
        while let Some(at) = queue.pop_front() {
            let unreached: Vec<BrokerIx> = (0..brokers)
                .filter(|&b| !frozen[b] && search.parent[b].is_none() && graph.can_hand(at, b))
                .collect();
            for next in unreached {
                search.parent[next] = Some(at);
                search.distance[next] = search.distance[at] + 1;
                queue.push_back(next);
            }
        }
        search
    }

    /// The path to the reached broker with the fewest leaders, if it has at most `level - 2`.
    fn path_to_relief(&self, graph: &LeaderGraph, level: usize) -> Option<Vec<BrokerIx>> {
        let target = (0..graph.brokers)
            .filter(|&b| self.parent[b].is_some() && graph.leaders[b] + 2 <= level)
            .min_by_key(|&b| (graph.leaders[b], self.distance[b], b))?;
        let mut path = vec![target];
        let mut at = target;
        while let Some(parent) = self.parent[at].filter(|&p| p != at) {
            path.push(parent);
            at = parent;
        }
        path.reverse();
        Some(path)
    }
}
