//! UnregisterBroker: forgets a broker that has left for good (a scale-down's last step), so it
//! no longer counts as an offline broker and the metadata quorum stops sending it the log.
//!
//! Only a fenced broker (stopped for longer than the session timeout) that holds no replica is
//! unregistered, and never a voter: remove it from the voters first (RemoveRaftVoter).

use krait_acl::Operation;
use krait_image::{ApplyError, MetadataRecord};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::cluster::ChangeError;
use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let broker = ctx.broker;
    let id = request.broker_id.0;
    let outcome = if !ctx.authorized_on_cluster(Operation::Alter) {
        Err((
            ResponseError::ClusterAuthorizationFailed,
            "Not authorized to unregister brokers".to_string(),
        ))
    } else if broker.cluster.quorum.membership().voters.contains(&id) {
        Err((
            ResponseError::InvalidRequest,
            format!(
                "broker {id} is a voter of the metadata quorum; remove it from the voters first (`krait cluster remove-voter {id}`)"
            ),
        ))
    } else {
        let unregistered = |image: &krait_image::ClusterImage| !image.brokers.contains_key(&id);
        match broker
            .cluster
            .change(MetadataRecord::UnregisterBroker { id }, unregistered)
            .await
        {
            Ok(_) => Ok(()),
            Err(ChangeError::Refused(e @ ApplyError::UnknownBroker(_))) => {
                Err((ResponseError::BrokerIdNotRegistered, e.to_string()))
            }
            Err(ChangeError::Refused(e)) => Err((ResponseError::InvalidRequest, e.to_string())),
            Err(e) => Err((ResponseError::RequestTimedOut, e.to_string())),
        }
    };
    let mut response = UnregisterBrokerResponse::default();
    if let Err((code, message)) = outcome {
        response.error_code = code.code();
        response.error_message = Some(StrBytes::from_string(message));
    } else {
        tracing::info!(broker = id, "broker unregistered");
    }
    response
}
