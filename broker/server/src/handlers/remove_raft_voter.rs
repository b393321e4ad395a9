//! RemoveRaftVoter (KIP-853): takes a voter out of the metadata quorum's voters; it stays an
//! observer, following the log. The leader may remove itself: it steps down once the change
//! commits, and the remaining voters elect a leader. The last voter is never removed. Any
//! broker answers; it asks the leader.

use krait_protocol::kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::cluster::rpc::QuorumCall;
use crate::context::RequestContext;
use crate::handlers::add_raft_voter::change;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let directory = Some(request.voter_directory_id).filter(|d| !d.is_nil());
    let call = QuorumCall::RemoveVoter {
        id: request.voter_id,
        directory,
    };
    let mut response = RemoveRaftVoterResponse::default();
    if let Err((code, message)) = change(ctx, request.cluster_id.as_deref(), call).await {
        response.error_code = code.code();
        response.error_message = Some(StrBytes::from_string(message));
    }
    response
}
