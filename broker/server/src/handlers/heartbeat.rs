//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use krait_protocol::kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if let Some(error) = broker.not_coordinator() {
        let mut response = HeartbeatResponse::default();
        response.error_code = error.code();
        return response;
    }
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    let error = broker.coordinator.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
        instance.as_deref(),
    );
    let mut response = HeartbeatResponse::default();
    response.error_code = error.map_or(0, |e| e.code());
    response
}
