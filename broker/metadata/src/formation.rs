//! How a node with an empty metadata log takes its place in the quorum: a configured voter
//! forms a new quorum with the other voters, any node joins the one they formed, and a node the
//! quorum knows as a voter that joined with another data directory refuses to start (it lost
//! its data directory). Voters change at runtime (`MetadataQuorum::add_voter`), so an observer
//! with an empty log asks too: it may have been made a voter before its volume was lost.
//!
//! Raft is safe only while every voter remembers what it voted for and which entries it
//! acknowledged. A voter restarted on an empty directory remembers neither: if it came back as
//! itself it could grant a vote to a candidate that lacks committed entries, and those entries
//! would be lost. So each data directory gets an id the first time the quorum starts on it,
//! the quorum is formed with every voter's directory id in its membership (as KRaft's voters
//! carry their directory ids since KIP-853), and a voter with an empty log first asks the other
//! voters who they are and what membership they hold. Until it has placed itself, its `Raft`
//! service refuses every Raft message, so it can neither vote nor acknowledge.
//!
//! This module owns that decision ([`decide`], pure) and the loop that asks until it can make
//! it. It must not change a formed membership: replacing a voter is a membership change
//! (remove the old member, add the new one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use krait_peer::ClusterTransport;
use krait_storage::raft::{KvOp, RaftKv, Space};
use openraft::error::{InitializeError, RaftError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::network::Partition;
use crate::proto::RaftMessage;
use crate::proto::raft_client::RaftClient;
use crate::types::{Member, NodeId, Raft};

/// Where the data directory's id is kept, beside the vote.
const DIRECTORY_ID: &[u8] = b"directory_id";
/// How long one voter may take to say who it is.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two rounds of questions while some voter has not answered.
const RETRY: Duration = Duration::from_millis(250);
/// How often a voter still waiting says so in its log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// This data directory's id: made the first time the quorum starts on it, then kept (synced
/// before the node votes for the first time).
pub(crate) fn directory_id(kv: &dyn RaftKv) -> Result<Uuid, String> {
    if let Some(stored) = kv
        .get(Space::State, DIRECTORY_ID)
        .map_err(|e| e.to_string())?
    {
        return Uuid::from_slice(&stored).map_err(|e| format!("unreadable directory id: {e}"));
    }
    let id = Uuid::new_v4();
    let write = KvOp::Put {
        space: Space::State,
        key: DIRECTORY_ID.to_vec(),
        value: id.as_bytes().to_vec(),
    };
    kv.write(vec![write], true).map_err(|e| e.to_string())?;
    Ok(id)
}

/// Whether this node's `Raft` service takes Raft messages yet: closed while a voter with an
/// empty log has not placed itself, open otherwise. Shared by the quorum and its service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission(Arc<AtomicBool>);

impl Admission {
    pub(crate) fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The question of the `Identify` call: who asks.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IdentifyRequest {
    pub node_id: NodeId,
}

/// What a node answers about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub node_id: NodeId,
    pub directory: Uuid,
    /// The voters of the membership its log holds; `None` while its log is empty.
    pub voters: Option<BTreeMap<NodeId, Member>>,
}

/// What a node with an empty log does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every voter answered with an empty log: form the quorum with these members (every voter
    /// computes the same ones, which openraft documents as safe to initialize with).
    Form(BTreeMap<NodeId, Member>),
    /// A voter holds a membership in which this node is not a voter (it joins as an observer,
    /// which the controller adds), or is one with this directory: take part.
    Join,
    /// A voter holds a membership in which this node is a voter that joined with another
    /// directory: its data is lost. Never take part.
    Refuse(String),
    /// No voter has answered with a membership yet, and (for a configured voter) not every
    /// voter has answered.
    Wait { silent: Vec<NodeId> },
}

/// Decides from the answers gathered so far (`configured`: every configured voter's cluster
/// address, this node's included when it is one; `voter`: whether it is, so may form). Pure.
pub(crate) fn decide(
    me: NodeId,
    directory: Uuid,
    configured: &BTreeMap<NodeId, String>,
    voter: bool,
    answers: &BTreeMap<NodeId, Identity>,
) -> Decision {
    for (from, answer) in answers {
        let Some(voters) = &answer.voters else {
            continue;
        };
        return match voters.get(&me) {
            // Not (or no longer) a voter: an observer receives the log and never votes, so an
            // empty log is safe.
            None => Decision::Join,
            Some(Member {
                directory: Some(joined),
                ..
            }) if *joined != directory => Decision::Refuse(format!(
                "this node's metadata log is empty, but voter {from} knows node {me} as a voter that joined with data directory {joined} (this one is {directory}): its data directory was lost, and a voter that forgot its votes and log must not come back as itself. Restore its volume, or replace the voter: `krait cluster remove-voter {me}`, then start it again and `krait cluster add-voter {me}`"
            )),
            Some(_) => Decision::Join,
        };
    }
    let silent: Vec<NodeId> = configured
        .keys()
        .filter(|id| **id != me && !answers.contains_key(id))
        .copied()
        .collect();
    if !silent.is_empty() || !voter {
        return Decision::Wait { silent };
    }
    let members = configured
        .iter()
        .map(|(id, addr)| {
            let joined = if *id == me {
                directory
            } else {
                answers[id].directory
            };
            (*id, Member::new(addr.clone(), Some(joined)))
        })
        .collect();
    Decision::Form(members)
}

/// How a node with an empty log asks the voters and acts on [`decide`].
pub(crate) struct Formation {
    pub raft: Raft,
    pub me: NodeId,
    pub directory: Uuid,
    pub configured: BTreeMap<NodeId, String>,
    /// Whether this node is a configured voter (which may form the quorum).
    pub voter: bool,
    pub transport: ClusterTransport,
    pub partition: Partition,
    pub admission: Admission,
}

impl Formation {
    /// Asks until this voter has formed the quorum, joined it, or must refuse (the error says
    /// why). Runs until then; the caller aborts it on shutdown.
    pub(crate) async fn run(self) -> Result<(), String> {
        let started = Instant::now();
        let mut reported = Instant::now();
        loop {
            let answers = self.ask_the_others().await;
            match decide(
                self.me,
                self.directory,
                &self.configured,
                self.voter,
                &answers,
            ) {
                Decision::Form(members) => return self.form(members).await,
                Decision::Join => {
                    tracing::info!(node_id = self.me, "joining the metadata quorum");
                    self.admission.open();
                    return Ok(());
                }
                Decision::Refuse(why) => return Err(why),
                Decision::Wait { silent } => {
                    if reported.elapsed() >= REPORT_EVERY {
                        reported = Instant::now();
                        tracing::warn!(
                            node_id = self.me,
                            ?silent,
                            waited_s = started.elapsed().as_secs(),
                            "taking part in the metadata quorum waits for the voters to answer"
                        );
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    async fn form(&self, members: BTreeMap<NodeId, Member>) -> Result<(), String> {
        tracing::info!(node_id = self.me, voters = ?members.keys(), "forming the metadata quorum");
        self.admission.open();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another voter's entries reached this node first: the quorum is already formed.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(format!("forming the metadata quorum: {e}")),
        }
    }

    /// Every other voter's answer, asked at once; a voter that does not answer in time is left
    /// out (asked again next round).
    async fn ask_the_others(&self) -> BTreeMap<NodeId, Identity> {
        let asks = self
            .configured
            .iter()
            .filter(|(id, _)| **id != self.me)
            .map(|(id, addr)| async move { (*id, self.identify(addr).await) });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|(id, answer)| match answer {
                Ok(identity) if identity.node_id == id => Some((id, identity)),
                Ok(identity) => {
                    tracing::warn!(
                        voter = id,
                        answered = identity.node_id,
                        "a voter's address answers as another node"
                    );
                    None
                }
                Err(error) => {
                    tracing::debug!(voter = id, %error, "voter did not say who it is");
                    None
                }
            })
            .collect()
    }

    async fn identify(&self, addr: &str) -> Result<Identity, String> {
        identify(&self.transport, &self.partition, self.me, addr).await
    }
}

/// Asks the node at `addr` who it is (its node id and data directory id) and what membership
/// its log holds; `me` is who asks.
pub(crate) async fn identify(
    transport: &ClusterTransport,
    partition: &Partition,
    me: NodeId,
    addr: &str,
) -> Result<Identity, String> {
    if partition.is_cut() {
        return Err("cut off from the other voters".into());
    }
    let channel = transport
        .channel(addr, IDENTIFY_TIMEOUT, None)
        .map_err(|e| e.to_string())?;
    let payload =
        serde_json::to_vec(&IdentifyRequest { node_id: me }).map_err(|e| e.to_string())?;
    let mut client = RaftClient::new(channel);
    let call = client.identify(RaftMessage { payload });
    let reply = tokio::time::timeout(IDENTIFY_TIMEOUT, call)
        .await
        .map_err(|_| format!("no answer within {IDENTIFY_TIMEOUT:?}"))?
        .map_err(|status| status.to_string())?;
    serde_json::from_slice(&reply.into_inner().payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> BTreeMap<NodeId, String> {
        (1..=3).map(|id| (id, format!("b{id}:9093"))).collect()
    }

    fn dir(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn empty(id: NodeId) -> Identity {
        Identity {
            node_id: id,
            directory: dir(id as u128),
            voters: None,
        }
    }

    fn formed(id: NodeId, dirs: [Option<Uuid>; 3]) -> Identity {
        let voters = (1..=3)
            .zip(dirs)
            .map(|(v, d)| (v, Member::new(format!("b{v}:9093"), d)))
            .collect();
        Identity {
            voters: Some(voters),
            ..empty(id)
        }
    }

    #[test]
    fn every_voter_empty_forms_with_every_directory() {
        let answers = BTreeMap::from([(2, empty(2)), (3, empty(3))]);
        let Decision::Form(members) = decide(1, dir(1), &configured(), true, &answers) else {
            panic!("expected to form");
        };
        let dirs: Vec<_> = members.values().map(|m| m.directory).collect();
        assert_eq!(dirs, vec![Some(dir(1)), Some(dir(2)), Some(dir(3))]);
        assert_eq!(members[&2].addr, "b2:9093");
    }

    #[test]
    fn a_silent_voter_and_no_membership_waits() {
        let answers = BTreeMap::from([(2, empty(2))]);
        assert_eq!(
            decide(1, dir(1), &configured(), true, &answers),
            Decision::Wait { silent: vec![3] }
        );
    }

    #[test]
    fn a_single_voter_forms_alone() {
        let alone = BTreeMap::from([(1, "b1:9093".to_string())]);
        assert!(matches!(
            decide(1, dir(1), &alone, true, &BTreeMap::new()),
            Decision::Form(m) if m.len() == 1
        ));
    }

    #[test]
    fn a_membership_with_this_directory_joins_even_if_others_are_silent() {
        let answers = BTreeMap::from([(2, formed(2, [Some(dir(1)), Some(dir(2)), None]))]);
        assert_eq!(
            decide(1, dir(1), &configured(), true, &answers),
            Decision::Join
        );
    }

    #[test]
    fn a_membership_from_before_directory_ids_joins() {
        let answers = BTreeMap::from([(2, formed(2, [None, None, None]))]);
        assert_eq!(
            decide(1, dir(9), &configured(), true, &answers),
            Decision::Join
        );
    }

    #[test]
    fn a_membership_with_another_directory_refuses_a_wiped_voter() {
        let answers = BTreeMap::from([
            (2, formed(2, [Some(dir(1)), Some(dir(2)), Some(dir(3))])),
            (3, empty(3)),
        ]);
        let Decision::Refuse(why) = decide(1, dir(7), &configured(), true, &answers) else {
            panic!("expected a refusal");
        };
        assert!(why.contains("data directory was lost"), "{why}");
        // The operator finds the lost directory by these words in the termination message
        // (operator/reconciler/src/cluster/lost_voter.rs).
        assert!(
            why.contains(&format!(
                "knows node 1 as a voter that joined with data directory {}",
                dir(1)
            )),
            "{why}"
        );
    }

    #[test]
    fn a_membership_without_this_node_joins_it_as_an_observer() {
        // A configured voter that was removed from the voters since: safe to take part, as an
        // observer never votes.
        let mut other = formed(2, [None, None, None]);
        other.voters.as_mut().unwrap().remove(&1);
        let answers = BTreeMap::from([(2, other)]);
        assert_eq!(
            decide(1, dir(1), &configured(), true, &answers),
            Decision::Join
        );
    }

    #[test]
    fn an_observer_waits_for_a_membership_and_never_forms() {
        let answers = BTreeMap::from([(1, empty(1)), (2, empty(2)), (3, empty(3))]);
        assert_eq!(
            decide(4, dir(4), &configured(), false, &answers),
            Decision::Wait { silent: vec![] }
        );
        let answers = BTreeMap::from([(2, formed(2, [None, None, None]))]);
        assert_eq!(
            decide(4, dir(4), &configured(), false, &answers),
            Decision::Join
        );
    }

    #[test]
    fn an_observer_that_was_made_a_voter_and_lost_its_directory_refuses() {
        let mut other = formed(2, [Some(dir(1)), Some(dir(2)), Some(dir(3))]);
        other
            .voters
            .as_mut()
            .unwrap()
            .insert(4, Member::new("b4:9093", Some(dir(4))));
        let answers = BTreeMap::from([(2, other)]);
        let Decision::Refuse(why) = decide(4, dir(40), &configured(), false, &answers) else {
            panic!("expected a refusal");
        };
        assert!(why.contains("remove-voter 4"), "{why}");
    }
}
