//! AddRaftVoter (KIP-853): makes a broker that already follows the metadata log (an observer)
//! a voter. The leader waits for it to catch up, checks its data directory id (when the request
//! gives one; zero means "whatever it has"), records it, and commits a joint-consensus
//! membership change. Any broker answers; it asks the leader.

use krait_acl::Operation;
use krait_metadata::{MembershipError, ProposeError};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::cluster::rpc::QuorumCall;
use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let id = request.voter_id;
    let outcome = if !ctx.authorized_on_cluster(Operation::Alter) {
        Err((
            ResponseError::ClusterAuthorizationFailed,
            "Not authorized to change the metadata quorum".to_string(),
        ))
    } else if let Some(wrong) = wrong_cluster(ctx, request.cluster_id.as_deref()) {
        Err((ResponseError::InconsistentClusterId, wrong))
    } else if ctx.broker.cluster.quorum.membership().voters.contains(&id) {
        Err((
            ResponseError::DuplicateVoter,
            format!("broker {id} is already a voter"),
        ))
    } else {
        let directory = Some(request.voter_directory_id).filter(|d| !d.is_nil());
        let call = QuorumCall::AddVoter { id, directory };
        ctx.broker
            .cluster
            .quorum_call(call)
            .await
            .map(drop)
            .map_err(|e| (code(&e), e.to_string()))
    };
    let mut response = AddRaftVoterResponse::default();
    if let Err((code, message)) = outcome {
        response.error_code = code.code();
        response.error_message = Some(StrBytes::from_string(message));
    }
    response
}

/// The request's cluster id, when given (not null or empty), must be this cluster's.
pub fn wrong_cluster(ctx: &RequestContext<'_>, asked: Option<&str>) -> Option<String> {
    let ours = ctx.broker.cluster_id();
    asked
        .filter(|asked| !asked.is_empty() && *asked != ours)
        .map(|asked| format!("this is cluster {ours}, not {asked}"))
}

/// Kafka's error code for a refused or failed membership change.
pub fn code(error: &MembershipError) -> ResponseError {
    match error {
        MembershipError::UnknownMember(_) | MembershipError::NotAVoter(_) => {
            ResponseError::VoterNotFound
        }
        MembershipError::LastVoter(_) => ResponseError::InvalidRequest,
        MembershipError::DirectoryMismatch { .. } => ResponseError::InvalidVoterKey,
        MembershipError::NotCaughtUp { .. } | MembershipError::Unreachable { .. } => {
            ResponseError::RequestTimedOut
        }
        MembershipError::Propose(ProposeError::NotLeader { .. }) => {
            ResponseError::NotLeaderOrFollower
        }
        MembershipError::Propose(_) => ResponseError::RequestTimedOut,
    }
}
