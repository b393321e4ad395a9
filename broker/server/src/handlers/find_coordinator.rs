//! FindCoordinator: the controller coordinates every consumer group and every transactional id,
//! so every member of a group, and every producer of a transactional id, finds the same
//! coordinator whichever broker it asks. Committed offsets and transaction state are records of
//! the metadata log, so a new controller takes over both (docs/architecture.md).

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use krait_protocol::kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// (node id, host, port) of the coordinator, or the error for this key type.
fn locate(
    ctx: &RequestContext<'_>,
    key_type: i8,
) -> Result<(i32, String, i32), (ResponseError, &'static str)> {
    let broker = ctx.broker;
    if key_type == GROUP || key_type == TRANSACTION {
        let image = broker.cluster.image();
        let controller = broker.cluster.controller_id();
        match controller.and_then(|id| image.brokers.get(&id).filter(|b| !b.fenced)) {
            Some(b) => {
                let (host, port) = ctx.client_address(b);
                Ok((b.id, host, port))
            }
            None if controller == Some(broker.node_id()) || image.brokers.len() <= 1 => {
                let (host, port) = ctx.own_address();
                Ok((broker.node_id(), host, port))
            }
            None => Err((
                ResponseError::CoordinatorNotAvailable,
                "No controller is available to coordinate groups and transactions; retry.",
            )),
        }
    } else {
        Err((
            ResponseError::CoordinatorNotAvailable,
            "Unknown coordinator key type: only groups (0) and transactions (1) have coordinators.",
        ))
    }
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.api_version;
    let mut response = FindCoordinatorResponse::default();
    let found = locate(ctx, request.key_type);
    // Each key needs DESCRIBE on its group, or on its transactional id (Kafka's checks); the
    // location is the same for all.
    let for_key = |key: &str| match &found {
        Ok(_)
            if request.key_type == GROUP
                && !ctx.authorized(Operation::Describe, ResourceType::Group, key) =>
        {
            Err((
                ResponseError::GroupAuthorizationFailed,
                "Not authorized to describe the group",
            ))
        }
        Ok(_)
            if request.key_type == TRANSACTION
                && !ctx.authorized(Operation::Describe, ResourceType::TransactionalId, key) =>
        {
            Err((
                ResponseError::TransactionalIdAuthorizationFailed,
                "Not authorized to describe the transactional id",
            ))
        }
        other => other.clone(),
    };
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                match &for_key(key) {
                    Ok((node, host, port)) => {
                        (c.node_id, c.host, c.port) =
                            (BrokerId(*node), StrBytes::from_string(host.clone()), *port);
                        c.error_message = None;
                    }
                    Err((e, m)) => {
                        (c.node_id, c.error_code, c.error_message) =
                            (BrokerId(-1), e.code(), Some(StrBytes::from_static_str(m)));
                    }
                }
                c
            })
            .collect();
        return response;
    }
    match for_key(&request.key) {
        Ok((node, host, port)) => {
            (response.node_id, response.host, response.port) =
                (BrokerId(node), StrBytes::from_string(host), port);
            response.error_message = None;
        }
        Err((e, m)) => {
            (response.node_id, response.error_code) = (BrokerId(-1), e.code());
            if version >= 1 {
                response.error_message = Some(StrBytes::from_static_str(m));
            }
        }
    }
    response
}
