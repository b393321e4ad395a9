//! A topic's id (Kafka's UUID for it) from Metadata, which librdkafka's admin API does not
//! expose. Reading an id never creates the topic.

use std::ops::RangeInclusive;

use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;

use crate::cluster::{Admin, AdminError, Result, topic_name};
use crate::wire::error_text;

/// Metadata v10 introduced topic ids; v12 is the newest this client asks for.
const VERSIONS: RangeInclusive<i16> = 10..=12;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

impl Admin {
    /// The id of `topic` as the bootstrap broker reports it; `None` when the broker has no
    /// such topic or reports the nil id. A broker that predates topic ids (Metadata below
    /// v10) is an error naming the API.
    pub fn topic_id(&mut self, topic: &str) -> Result<Option<String>> {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
            ]))
            .with_allow_auto_topic_creation(false);
        let response = self.bootstrap_connection().call(&request, VERSIONS)?;
        let Some(found) = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        else {
            return Ok(None);
        };
        match found.error_code {
            0 => Ok(Some(found.topic_id)
                .filter(|id| !id.is_nil())
                .map(|id| id.to_string())),
            UNKNOWN_TOPIC_OR_PARTITION => Ok(None),
            code => Err(AdminError::TopicMetadata {
                topic: topic.to_string(),
                detail: error_text(code, None),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataResponse};
    use kafka_protocol::protocol::{Decodable, Request};

    use super::*;
    use crate::fake_broker::{FakeBroker, answer, api_versions};

    /// A broker serving Metadata up to `metadata_max` that answers every Metadata request with
    /// `topics`, after checking that the request may not create a topic.
    fn broker(metadata_max: i16, topics: Vec<MetadataResponseTopic>) -> FakeBroker {
        FakeBroker::start(move |h, mut body| {
            let v = h.request_api_version;
            match h.request_api_key {
                ApiVersionsRequest::KEY => answer(
                    h,
                    &api_versions(&[(MetadataRequest::KEY, 0, metadata_max)]),
                    v,
                ),
                MetadataRequest::KEY => {
                    let request = MetadataRequest::decode(&mut body, v).unwrap();
                    assert!(
                        !request.allow_auto_topic_creation,
                        "a read must not create the topic"
                    );
                    let r = MetadataResponse::default().with_topics(topics.clone());
                    answer(h, &r, v)
                }
                other => panic!("the fake broker lists no API {other}"),
            }
        })
    }

    fn topic(name: &str, id: u128, error_code: i16) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_topic_id(uuid::Uuid::from_u128(id))
            .with_error_code(error_code)
    }

    fn id_of(fake: &FakeBroker, topic: &str) -> Result<Option<String>> {
        Admin::connect(&fake.address, Duration::from_secs(5))?.topic_id(topic)
    }

    #[test]
    fn the_topic_id_is_read_from_metadata_at_the_newest_version_with_ids() {
        let fake = broker(13, vec![topic("orders", 0x1234, 0)]);
        assert_eq!(
            id_of(&fake, "orders").unwrap().as_deref(),
            Some("00000000-0000-0000-0000-000000001234")
        );
        assert_eq!(
            fake.requests(),
            [(ApiVersionsRequest::KEY, 3), (MetadataRequest::KEY, 12)]
        );
    }

    #[test]
    fn an_unknown_topic_or_the_nil_id_is_none() {
        let unknown = broker(
            12,
            vec![topic("orders", 0x1234, UNKNOWN_TOPIC_OR_PARTITION)],
        );
        assert_eq!(id_of(&unknown, "orders").unwrap(), None);
        let nil = broker(12, vec![topic("orders", 0, 0)]);
        assert_eq!(id_of(&nil, "orders").unwrap(), None);
        let absent = broker(12, vec![topic("payments", 0x1234, 0)]);
        assert_eq!(id_of(&absent, "orders").unwrap(), None);
    }

    #[test]
    fn another_topic_error_is_an_error_naming_the_topic() {
        // TOPIC_AUTHORIZATION_FAILED (29).
        let fake = broker(12, vec![topic("orders", 0x1234, 29)]);
        let err = id_of(&fake, "orders").unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read metadata of topic orders: TopicAuthorizationFailed (29)"),
            "{err}"
        );
    }

    #[test]
    fn a_broker_without_topic_ids_is_refused_before_metadata_is_sent() {
        let fake = broker(9, vec![topic("orders", 0x1234, 0)]);
        let err = id_of(&fake, "orders").unwrap_err().to_string();
        assert!(err.contains("does not support Metadata"), "{err}");
        assert_eq!(fake.requests(), [(ApiVersionsRequest::KEY, 3)]);
    }
}
