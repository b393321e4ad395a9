//! `krait cluster status`: the brokers, the controller, and which partitions are
//! under-replicated, offline or missing replicas. The health summary is a pure function of
//! the Metadata answer. `krait cluster unregister-broker`: forget a broker that left for good.
//! `krait cluster quorum`: the metadata quorum's leader, voters and observers and their lag;
//! `add-voter` / `remove-voter` change the voters while the cluster serves.

use clap::Subcommand;
use krait_admin::{BrokerInfo, PartitionState, TopicState};
use serde::Serialize;

use crate::client::Global;
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers, the controller, and under-replicated and offline partitions.
    Status,
    /// Forget a broker that has left for good: it must be stopped (fenced) and hold no
    /// replica (move them off first). Voters of the metadata quorum cannot be unregistered.
    UnregisterBroker {
        /// The broker's id.
        id: i32,
    },
    /// The metadata quorum: leader, epoch, high watermark, and each voter's and observer's log
    /// end offset, lag and last contact (Kafka's DescribeQuorum).
    Quorum,
    /// Make a running broker (an observer of the metadata log) a voter: it catches up first,
    /// then a membership change adds it.
    AddVoter {
        /// The broker's id.
        id: i32,
    },
    /// Take a voter out of the voters (it stays an observer); the last voter cannot go. The
    /// controller may remove itself: another voter takes over.
    RemoveVoter {
        /// The broker's id.
        id: i32,
    },
}

pub fn run(g: &Global, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(g),
        ClusterCommand::UnregisterBroker { id } => unregister(g, id),
        ClusterCommand::Quorum => quorum(g),
        ClusterCommand::AddVoter { id } => {
            if g.session()?.add_raft_voter(id)? {
                println!("broker {id} is now a voter");
            } else {
                println!("broker {id} already is a voter");
            }
            Ok(())
        }
        ClusterCommand::RemoveVoter { id } => {
            g.session()?.remove_raft_voter(id)?;
            println!("broker {id} is no longer a voter (it stays an observer)");
            Ok(())
        }
    }
}

fn quorum(g: &Global) -> anyhow::Result<()> {
    let q = g.session()?.describe_quorum()?;
    print(g.output, &q, |q| {
        let mut text = format!(
            "leader {}  epoch {}  high watermark {}\n",
            q.leader, q.epoch, q.high_watermark
        );
        let mut table = Table::new(&["ID", "ROLE", "LOG END", "LAG", "LAST FETCH (ms ago)"]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let ago = |ms: i64| {
            if ms < 0 {
                "-".to_string()
            } else {
                (now - ms).max(0).to_string()
            }
        };
        for (role, members) in [("voter", &q.voters), ("observer", &q.observers)] {
            for m in members {
                let role = if m.id == q.leader { "leader" } else { role };
                table.row(vec![
                    m.id.to_string(),
                    role.to_string(),
                    m.log_end_offset.to_string(),
                    m.lag.to_string(),
                    ago(m.last_fetch_ms),
                ]);
            }
        }
        text.push_str(&table.render());
        text
    })
}

fn unregister(g: &Global, id: i32) -> anyhow::Result<()> {
    g.session()?.unregister_broker(id)?;
    println!("broker {id} unregistered");
    Ok(())
}

/// What is wrong with the cluster's partitions, if anything.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    pub topics: usize,
    pub partitions: usize,
    /// Led, but with fewer in-sync replicas than replicas.
    pub under_replicated: Vec<PartitionState>,
    /// No leader (leader id -1): neither readable nor writable. Listed here only, not also
    /// as under-replicated.
    pub offline: Vec<PartitionState>,
    /// Partitions with at least one replica the broker reports offline.
    pub offline_replicas: Vec<PartitionState>,
}

pub fn health(topics: &[TopicState]) -> Health {
    let mut h = Health {
        topics: topics.len(),
        ..Health::default()
    };
    for p in topics.iter().flat_map(|t| &t.partitions) {
        h.partitions += 1;
        if p.leader < 0 {
            h.offline.push(p.clone());
        } else if p.isr.len() < p.replicas.len() {
            h.under_replicated.push(p.clone());
        }
        if !p.offline_replicas.is_empty() {
            h.offline_replicas.push(p.clone());
        }
    }
    h
}

#[derive(Debug, Serialize)]
struct BrokerView {
    #[serde(flatten)]
    broker: BrokerInfo,
    controller: bool,
}

#[derive(Debug, Serialize)]
struct ClusterStatus {
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<BrokerView>,
    #[serde(flatten)]
    health: Health,
}

fn status(g: &Global) -> anyhow::Result<()> {
    let mut admin = g.session()?;
    let cluster = admin.describe_cluster()?;
    let metadata = admin.metadata(None)?;
    let status = ClusterStatus {
        cluster_id: cluster.cluster_id,
        controller_id: cluster.controller_id,
        brokers: cluster
            .brokers
            .into_iter()
            .map(|b| BrokerView {
                controller: b.id == cluster.controller_id,
                broker: b,
            })
            .collect(),
        health: health(&metadata.topics),
    };
    print(g.output, &status, render)
}

/// Broker ids as Kafka's tools print them: `1,2,3`; `-` for none.
pub fn id_list(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn partition_table(partitions: &[PartitionState]) -> String {
    let mut t = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]);
    for p in partitions {
        t.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            if p.leader < 0 {
                "none".to_string()
            } else {
                p.leader.to_string()
            },
            id_list(&p.replicas),
            id_list(&p.isr),
            id_list(&p.offline_replicas),
        ]);
    }
    t.render()
}

fn render(s: &ClusterStatus) -> String {
    let mut out = format!(
        "Cluster: {}  Controller: {}  Brokers: {}\n\n",
        s.cluster_id.as_deref().unwrap_or("-"),
        if s.controller_id < 0 {
            "none".to_string()
        } else {
            s.controller_id.to_string()
        },
        s.brokers.len()
    );
    let mut brokers = Table::new(&["BROKER", "HOST:PORT", "RACK", "ROLE"]);
    for b in &s.brokers {
        let mut role = Vec::new();
        if b.controller {
            role.push("controller");
        }
        if b.broker.fenced {
            role.push("fenced");
        }
        brokers.row(vec![
            b.broker.id.to_string(),
            b.broker.address(),
            b.broker.rack.clone().unwrap_or_else(|| "-".into()),
            if role.is_empty() {
                "-".to_string()
            } else {
                role.join(",")
            },
        ]);
    }
    out.push_str(&brokers.render());
    let h = &s.health;
    out.push_str(&format!(
        "\n\nTopics: {}  Partitions: {}\n",
        h.topics, h.partitions
    ));
    for (title, list) in [
        ("Under-replicated partitions", &h.under_replicated),
        ("Offline partitions", &h.offline),
        ("Partitions with offline replicas", &h.offline_replicas),
    ] {
        out.push_str(&format!("{title}: {}\n", list.len()));
        if !list.is_empty() {
            out.push_str(&partition_table(list));
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(partition: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionState {
        PartitionState {
            topic: "orders".into(),
            partition,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: Vec::new(),
        }
    }

    fn topic(partitions: Vec<PartitionState>) -> TopicState {
        TopicState {
            name: "orders".into(),
            partitions,
        }
    }

    #[test]
    fn a_fully_replicated_cluster_has_nothing_to_report() {
        let h = health(&[topic(vec![
            partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
            partition(1, 2, &[2, 3, 1], &[3, 1, 2]),
        ])]);
        assert_eq!((h.topics, h.partitions), (1, 2));
        assert!(h.under_replicated.is_empty() && h.offline.is_empty());
        assert!(h.offline_replicas.is_empty());
    }

    #[test]
    fn a_partition_with_fewer_in_sync_replicas_than_replicas_is_under_replicated() {
        let h = health(&[topic(vec![
            partition(0, 1, &[1, 2, 3], &[1, 2]),
            partition(1, 1, &[1, 2, 3], &[1, 2, 3]),
        ])]);
        assert_eq!(
            h.under_replicated
                .iter()
                .map(|p| p.partition)
                .collect::<Vec<_>>(),
            [0]
        );
        assert!(h.offline.is_empty());
    }

    #[test]
    fn a_partition_without_a_leader_is_offline_and_not_also_under_replicated() {
        let h = health(&[topic(vec![partition(0, -1, &[1, 2], &[])])]);
        assert_eq!(h.offline.len(), 1);
        assert!(h.under_replicated.is_empty());
    }

    #[test]
    fn offline_replicas_are_reported_whatever_the_leader() {
        let mut p = partition(0, 1, &[1, 2], &[1]);
        p.offline_replicas = vec![2];
        let h = health(&[topic(vec![p])]);
        assert_eq!(h.offline_replicas.len(), 1);
        assert_eq!(h.offline_replicas[0].offline_replicas, [2]);
        assert_eq!(h.under_replicated.len(), 1);
    }

    #[test]
    fn counts_cover_every_topic() {
        let mut other = topic(vec![partition(0, 1, &[1], &[1])]);
        other.name = "payments".into();
        let h = health(&[topic(vec![partition(0, 1, &[1], &[1])]), other]);
        assert_eq!((h.topics, h.partitions), (2, 2));
    }

    #[test]
    fn the_table_marks_the_controller_and_lists_problem_partitions() {
        let status = ClusterStatus {
            cluster_id: Some("abc".into()),
            controller_id: 2,
            brokers: [1, 2]
                .into_iter()
                .map(|id| BrokerView {
                    broker: BrokerInfo {
                        id,
                        host: "h".into(),
                        port: 9092,
                        rack: None,
                        fenced: false,
                    },
                    controller: id == 2,
                })
                .collect(),
            health: health(&[topic(vec![partition(0, -1, &[1, 2], &[])])]),
        };
        let text = render(&status);
        assert!(
            text.contains("2       h:9092     -     controller"),
            "{text}"
        );
        assert!(text.contains("Offline partitions: 1"), "{text}");
        assert!(text.contains("orders  0          none"), "{text}");
        assert!(text.contains("Under-replicated partitions: 0"), "{text}");
    }
}
