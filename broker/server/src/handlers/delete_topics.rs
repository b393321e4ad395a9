//! DeleteTopics: by name (v1-v5) or by name or topic id (v6+).

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use krait_protocol::kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::context::RequestContext;
use crate::handlers::changes::change_refusal;
use krait_image::MetadataRecord;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=6;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        r.error_message = None;
        let topic = match &name {
            Some(n) => broker.topics.get(&n.0),
            None => broker.topics.get_by_id(id),
        };
        r.name = name.clone();
        if version >= 6 {
            r.topic_id = id;
        }
        let result = match topic {
            // Kafka's order: a topic the principal may not delete is refused whether it
            // exists or not (when it may not even describe it, nothing else is said).
            _ if !name
                .as_ref()
                .map(|n| n.0.to_string())
                .or_else(|| topic.as_ref().map(|t| t.name.clone()))
                .is_some_and(|n| ctx.authorized(Operation::Delete, ResourceType::Topic, &n)) =>
            {
                Err((
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.".to_string(),
                ))
            }
            None if name.is_none() => Err((
                ResponseError::UnknownTopicId,
                format!("Topic id {id} does not exist."),
            )),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic.".to_string(),
            )),
            Some(topic) => {
                let (name, id) = (topic.name.clone(), topic.id);
                broker
                    .cluster
                    .change(
                        MetadataRecord::DeleteTopic { name: name.clone() },
                        |image| image.topics.get(&name).is_none_or(|t| t.id != id),
                    )
                    .await
                    .map(|_| topic)
                    .map_err(change_refusal)
            }
        };
        match result {
            Ok(topic) => {
                r.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
                if version >= 6 {
                    r.topic_id = topic.id;
                }
            }
            Err((error, message)) => {
                r.error_code = error.code();
                if version >= 5 {
                    r.error_message = Some(StrBytes::from_string(message));
                }
            }
        }
        response.responses.push(r);
    }
    response
}
