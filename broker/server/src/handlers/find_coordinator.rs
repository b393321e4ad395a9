//! FindCoordinator: this broker coordinates every consumer group. Transactions are not
//! implemented, so a transaction coordinator is not available.

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use krait_protocol::kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

const GROUP: i8 = 0;

/// (node id, host, port) of the coordinator, or the error for this key type.
fn locate(
    broker: &Broker,
    key_type: i8,
) -> Result<(i32, String, i32), (ResponseError, &'static str)> {
    if key_type == GROUP {
        Ok((
            broker.node_id(),
            broker.advertised.host.clone(),
            broker.advertised.port,
        ))
    } else {
        Err((
            ResponseError::CoordinatorNotAvailable,
            "Only consumer group coordinators exist: transactions are not supported.",
        ))
    }
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    let found = locate(broker, request.key_type);
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                match &found {
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
    match found {
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
