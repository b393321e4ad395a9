//! Routes a request frame to its handler and encodes the answer.
//!
//! Unknown API keys and unserved versions get UNSUPPORTED_VERSION (ApiVersions in the v0 form
//! KIP-511 prescribes, so that any client can read it); a header or body that cannot be decoded
//! closes the connection, as Kafka does, because nothing after it can be trusted.

use std::net::SocketAddr;

use bytes::Bytes;
use krait_protocol::api::{self, api_versions_response};
use krait_protocol::frame::{
    self, FixedHeader, UNSUPPORTED_VERSION, decode_body, decode_header, encode_response,
};
use krait_protocol::kafka_protocol::messages::ApiKey;
use tracing::{Instrument, debug, debug_span, warn};

use crate::broker::Broker;
use crate::handlers;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    Respond(Bytes),
    /// Produce with acks=0: Kafka sends nothing back.
    NoResponse,
    RespondAndClose(Bytes),
    Close,
}

/// Handles one request frame (without its length prefix).
pub async fn dispatch(broker: &Broker, peer: SocketAddr, frame: Bytes) -> Outcome {
    let fixed = match FixedHeader::peek(&frame) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "unreadable request header, closing connection");
            return Outcome::Close;
        }
    };
    broker.metrics.request(fixed.api_key);
    let span = debug_span!(
        "request",
        api = fixed.api_key,
        version = fixed.api_version,
        correlation_id = fixed.correlation_id
    );
    route(broker, peer, fixed, frame).instrument(span).await
}

async fn route(broker: &Broker, peer: SocketAddr, fixed: FixedHeader, mut frame: Bytes) -> Outcome {
    let version = fixed.api_version;
    if fixed.api_key == ApiKey::ApiVersions as i16 && !api::is_supported(fixed.api_key, version) {
        // KIP-511: answer with v0 and the list, so the client can retry with a version we serve.
        return encoded(
            fixed.correlation_id,
            0,
            &api_versions_response(UNSUPPORTED_VERSION),
        );
    }
    let Some(support) =
        api::supported(fixed.api_key).filter(|_| api::is_supported(fixed.api_key, version))
    else {
        broker.metrics.request_error();
        warn!(
            api_key = fixed.api_key,
            version, "unsupported API or version"
        );
        return Outcome::RespondAndClose(frame::encode_unsupported(fixed.correlation_id));
    };
    let api = support.key;
    let header = match decode_header(&mut frame, api, version) {
        Ok(h) => h,
        Err(e) => return undecodable(broker, e),
    };
    let client = header.client_id.as_deref().unwrap_or("");
    debug!(client, "request");
    let corr = header.correlation_id;

    macro_rules! serve {
        ($handler:path) => {{
            match decode_body(&mut frame, api, version) {
                Ok(request) => {
                    trailing(&frame);
                    encoded(corr, version, &$handler(broker, version, request).await)
                }
                Err(e) => undecodable(broker, e),
            }
        }};
    }

    match api {
        ApiKey::ApiVersions => serve!(handlers::api_versions::handle),
        ApiKey::Metadata => serve!(handlers::metadata::handle),
        ApiKey::Produce => match decode_body(&mut frame, api, version) {
            Ok(request) => {
                trailing(&frame);
                match handlers::produce::handle(broker, version, request).await {
                    Some(response) => encoded(corr, version, &response),
                    None => Outcome::NoResponse,
                }
            }
            Err(e) => undecodable(broker, e),
        },
        ApiKey::Fetch => serve!(handlers::fetch::handle),
        ApiKey::ListOffsets => serve!(handlers::list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => serve!(handlers::offset_for_leader_epoch::handle),
        ApiKey::CreateTopics => serve!(handlers::create_topics::handle),
        ApiKey::DeleteTopics => serve!(handlers::delete_topics::handle),
        ApiKey::CreatePartitions => serve!(handlers::create_partitions::handle),
        ApiKey::DescribeConfigs => serve!(handlers::describe_configs::handle),
        ApiKey::DescribeCluster => serve!(handlers::describe_cluster::handle),
        ApiKey::DescribeLogDirs => serve!(handlers::describe_log_dirs::handle),
        ApiKey::InitProducerId => serve!(handlers::init_producer_id::handle),
        ApiKey::FindCoordinator => serve!(handlers::find_coordinator::handle),
        ApiKey::JoinGroup => match decode_body(&mut frame, api, version) {
            Ok(request) => {
                let client = handlers::join_group::Client {
                    client_id: client.to_string(),
                    host: format!("/{}", peer.ip()),
                };
                encoded(
                    corr,
                    version,
                    &handlers::join_group::handle(broker, version, request, client).await,
                )
            }
            Err(e) => undecodable(broker, e),
        },
        ApiKey::SyncGroup => serve!(handlers::sync_group::handle),
        ApiKey::Heartbeat => serve!(handlers::heartbeat::handle),
        ApiKey::LeaveGroup => serve!(handlers::leave_group::handle),
        ApiKey::OffsetCommit => serve!(handlers::offset_commit::handle),
        ApiKey::OffsetFetch => serve!(handlers::offset_fetch::handle),
        ApiKey::ListGroups => serve!(handlers::list_groups::handle),
        ApiKey::DescribeGroups => serve!(handlers::describe_groups::handle),
        ApiKey::DeleteGroups => serve!(handlers::delete_groups::handle),
        ApiKey::AlterConfigs => serve!(handlers::alter_configs::handle),
        ApiKey::IncrementalAlterConfigs => serve!(handlers::alter_configs::handle_incremental),
        ApiKey::AlterPartitionReassignments => serve!(handlers::reassignments::alter),
        ApiKey::ListPartitionReassignments => serve!(handlers::reassignments::list),
        ApiKey::ElectLeaders => serve!(handlers::reassignments::elect_leaders),
        ApiKey::UnregisterBroker => serve!(handlers::unregister_broker::handle),
        other => {
            // The version table and this match must agree; a miss is a bug, not client input.
            warn!(api = ?other, "API advertised without a handler");
            Outcome::RespondAndClose(frame::encode_unsupported(corr))
        }
    }
}

fn encoded<R>(correlation_id: i32, version: i16, response: &R) -> Outcome
where
    R: krait_protocol::kafka_protocol::protocol::Encodable
        + krait_protocol::kafka_protocol::protocol::HeaderVersion,
{
    match encode_response(correlation_id, version, response) {
        Ok(bytes) => Outcome::Respond(bytes),
        Err(e) => {
            warn!(error = %e, "cannot encode response, closing connection");
            Outcome::Close
        }
    }
}

fn trailing(rest: &Bytes) {
    if !rest.is_empty() {
        debug!(
            bytes = rest.len(),
            "ignored trailing bytes after the request body"
        );
    }
}

fn undecodable(broker: &Broker, e: frame::DecodeError) -> Outcome {
    broker.metrics.request_error();
    warn!(error = %e, "undecodable request, closing connection");
    Outcome::Close
}
