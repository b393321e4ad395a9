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
    let mut response = AddRaftVoterResponse::default();
    // Unauthorized callers learn nothing of the voters: `change` refuses them.
    if ctx.authorized_on_cluster(Operation::Alter)
        && ctx.broker.cluster.quorum.membership().voters.contains(&id)
    {
        response.error_code = ResponseError::DuplicateVoter.code();
        response.error_message = Some(StrBytes::from_string(format!(
            "broker {id} is already a voter"
        )));
        return response;
    }
    let directory = Some(request.voter_directory_id).filter(|d| !d.is_nil());
    let call = QuorumCall::AddVoter { id, directory };
    if let Err((code, message)) = change(ctx, request.cluster_id.as_deref(), call).await {
        response.error_code = code.code();
        response.error_message = Some(StrBytes::from_string(message));
    }
    response
}

/// Carries out a voter change for a Kafka request: authorized (Alter on the cluster), for this
/// cluster, on the leader.
pub async fn change(
    ctx: &RequestContext<'_>,
    cluster_id: Option<&str>,
    call: QuorumCall,
) -> Result<(), (ResponseError, String)> {
    if !ctx.authorized_on_cluster(Operation::Alter) {
        return Err((
            ResponseError::ClusterAuthorizationFailed,
            "Not authorized to change the metadata quorum".to_string(),
        ));
    }
    if let Some(wrong) = wrong_cluster(ctx, cluster_id) {
        return Err((ResponseError::InconsistentClusterId, wrong));
    }
    ctx.broker
        .cluster
        .quorum_call(call)
        .await
        .map(drop)
        .map_err(|e| (code(&e), e.to_string()))
}

/// The request's cluster id, when given (not null or empty), must be this cluster's.
fn wrong_cluster(ctx: &RequestContext<'_>, asked: Option<&str>) -> Option<String> {
    let ours = ctx.broker.cluster_id();
    asked
        .filter(|asked| !asked.is_empty() && *asked != ours)
        .map(|asked| format!("this is cluster {ours}, not {asked}"))
}

/// Kafka's error code for a refused or failed membership change.
fn code(error: &MembershipError) -> ResponseError {
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
