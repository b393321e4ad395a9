//! AlterConfigs: replace a topic's (or a broker's dynamic) config overrides, and the config
//! change rules IncrementalAlterConfigs shares.
//!
//! AlterConfigs replaces a resource's whole override set; IncrementalAlterConfigs
//! (`incremental_alter_configs.rs`) applies set/delete/append/subtract to single keys. Both validate the result as a whole and write it
//! in one catalog update, so a refused request changes nothing. A broker resource edits the
//! dynamic broker configs (`dynamic_config`), replicated through the controller; altering a
//! static one is refused with the key named.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use krait_protocol::kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::handlers::changes::{Refusal, change_refusal, config_access};
use crate::topic_config::{ConfigOp, apply_changes};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;
use krait_image::MetadataRecord;

use crate::dynamic_config;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// The change a request asks for, before it is applied to the current overrides.
pub(super) enum Change {
    Replace(BTreeMap<String, String>),
    Incremental(Vec<(String, ConfigOp)>),
}

pub(super) async fn alter(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    change: Change,
    validate_only: bool,
) -> Result<(), Refusal> {
    let broker = ctx.broker;
    config_access(ctx, resource_type, name, Operation::AlterConfigs)?;
    match resource_type {
        TOPIC => {}
        BROKER => return alter_broker(broker, name, change, validate_only).await,
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("Resource type {other} is not supported."),
            ));
        }
    }
    let Some(topic) = broker.topics.get(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist."),
        ));
    };
    let next = match change {
        Change::Replace(m) => apply_changes(
            &BTreeMap::new(),
            &m.into_iter()
                .map(|(k, v)| (k, ConfigOp::Set(v)))
                .collect::<Vec<_>>(),
            |_| None,
        ),
        Change::Incremental(c) => apply_changes(&topic.configs, &c, |k| {
            broker.defaults.topic_value(&topic.configs, k)
        }),
    }
    .map_err(|m| (ResponseError::InvalidConfig, m))?;
    if !validate_only && next != topic.configs {
        let wanted = next.clone();
        broker
            .cluster
            .change(
                MetadataRecord::SetTopicConfigs {
                    topic: name.to_string(),
                    configs: next,
                },
                |image| image.topics.get(name).is_some_and(|t| t.configs == wanted),
            )
            .await
            .map_err(change_refusal)?;
    }
    Ok(())
}

/// Sets dynamic broker configs of broker `name` (an id, or empty for the cluster-wide level)
/// through the controller; static broker configs are refused (`dynamic_config`).
async fn alter_broker(
    broker: &Broker,
    name: &str,
    change: Change,
    validate_only: bool,
) -> Result<(), Refusal> {
    if !name.is_empty() && name.parse::<i32>().is_err() {
        return Err((
            ResponseError::InvalidRequest,
            format!("Broker resource name {name:?} is not a broker id"),
        ));
    }
    let image = broker.cluster.image();
    let current = image.broker_configs.get(name).cloned().unwrap_or_default();
    // AlterConfigs replaces the level's whole set; IncrementalAlterConfigs edits it, APPEND and
    // SUBTRACT starting from the value in force when the level has none.
    let (replace, ops): (bool, Vec<(String, ConfigOp)>) = match change {
        Change::Replace(m) => (
            true,
            m.into_iter().map(|(k, v)| (k, ConfigOp::Set(v))).collect(),
        ),
        Change::Incremental(c) => (false, c),
    };
    let next = dynamic_config::apply(&current, replace, &ops, |k| {
        image
            .broker_configs
            .get("")
            .and_then(|c| c.get(k))
            .cloned()
            .or_else(|| broker.defaults.broker_config(k))
    })
    .map_err(|m| (ResponseError::InvalidConfig, m))?;
    if validate_only || next == current {
        return Ok(());
    }
    let wanted = next.clone();
    broker
        .cluster
        .change(
            MetadataRecord::SetBrokerConfigs {
                resource: name.to_string(),
                configs: next,
            },
            |image| image.broker_configs.get(name).cloned().unwrap_or_default() == wanted,
        )
        .await
        .map(|_| ())
        .map_err(change_refusal)
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for r in request.resources {
        let configs = r
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let result = alter(
            ctx,
            r.resource_type,
            &r.resource_name,
            Change::Replace(configs),
            request.validate_only,
        )
        .await;
        let mut out = AlterConfigsResourceResponse::default();
        (out.resource_type, out.resource_name) = (r.resource_type, r.resource_name);
        (out.error_code, out.error_message) = outcome(result);
        response.responses.push(out);
    }
    response
}

pub(super) fn outcome(result: Result<(), Refusal>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err((error, message)) => {
            tracing::info!(%message, "config change refused");
            (error.code(), Some(StrBytes::from_string(message)))
        }
    }
}
