//! DescribeConfigs: a topic's configs (override or default, with source) and the broker's.

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use krait_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use krait_protocol::kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::handlers::changes::config_access;
use crate::topic_config::ConfigEntry;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

struct Detail {
    version: i16,
    synonyms: bool,
    documentation: bool,
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let detail = Detail {
        version,
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let mut response = DescribeConfigsResponse::default();
    for resource in &request.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        r.error_message = None;
        let allowed = config_access(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            Operation::DescribeConfigs,
        );
        match allowed.and_then(|()| entries(broker, resource)) {
            Ok(entries) => {
                r.configs = entries
                    .iter()
                    .filter(|e| wanted(resource, &e.name))
                    .map(|e| describe(e, &detail))
                    .collect();
            }
            Err((error, message)) => {
                r.error_code = error.code();
                r.error_message = Some(StrBytes::from_string(message));
            }
        }
        response.results.push(r);
    }
    response
}

fn entries(
    broker: &Broker,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, (ResponseError, String)> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        TOPIC => match broker.topics.get(name) {
            Some(topic) => Ok(broker.defaults.topic_entries(&topic.configs)),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )),
        },
        BROKER
            if name.is_empty()
                || name
                    .parse::<i32>()
                    .is_ok_and(|id| broker.cluster.image().brokers.contains_key(&id)) =>
        {
            Ok(broker.defaults.broker_entries(name))
        }
        BROKER => Err((
            ResponseError::InvalidRequest,
            format!("Unknown broker id {name}."),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Resource type {other} is not supported."),
        )),
    }
}

/// Null or empty `configuration_keys` asks for every config, as in Kafka.
fn wanted(resource: &DescribeConfigsResource, name: &str) -> bool {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == name),
        _ => true,
    }
}

fn describe(e: &ConfigEntry, detail: &Detail) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = StrBytes::from_string(e.name.clone());
    c.value = Some(StrBytes::from_string(e.value.clone()));
    c.read_only = e.read_only;
    c.config_source = e.source as i8;
    if detail.synonyms {
        let mut s = DescribeConfigsSynonym::default();
        s.name = c.name.clone();
        s.value = c.value.clone();
        s.source = c.config_source;
        c.synonyms = vec![s];
    }
    if detail.version >= 3 {
        c.config_type = e.config_type as i8;
        c.documentation = detail
            .documentation
            .then(|| StrBytes::from_static_str(e.doc));
    }
    c
}
