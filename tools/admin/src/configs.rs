//! Reading configs with DescribeConfigs: topic configs (any broker answers for topics) and a
//! broker's dynamic configs (asked of that broker, as Kafka's admin client does).

use std::collections::BTreeMap;

use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Admin, AdminError, BrokerInfo, Result};
use crate::reassign::BROKER_RESOURCE;
use crate::wire::Connection;

const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs v1 added config sources; Krait serves 1..=4.
const VERSIONS: std::ops::RangeInclusive<i16> = 1..=4;
/// `config_source` of a broker config set dynamically for one broker or for all.
const DYNAMIC_BROKER: i8 = 1;
const DYNAMIC_DEFAULT_BROKER: i8 = 2;

/// Config name -> value of one resource.
pub type Configs = BTreeMap<String, String>;

fn describe(
    conn: &mut Connection,
    resources: Vec<DescribeConfigsResource>,
    keep: impl Fn(i8) -> bool,
) -> Result<BTreeMap<String, Configs>> {
    let request = DescribeConfigsRequest::default().with_resources(resources);
    let response = conn.call(&request, VERSIONS)?;
    let mut out = BTreeMap::new();
    for r in response.results {
        if r.error_code != 0 {
            return Err(AdminError::refused(
                format!("DescribeConfigs of {}", r.resource_name.as_str()),
                r.error_code,
                r.error_message.as_ref(),
            ));
        }
        let configs: Configs = r
            .configs
            .into_iter()
            .filter(|c| keep(c.config_source))
            .filter_map(|c| Some((c.name.to_string(), c.value?.to_string())))
            .collect();
        out.insert(r.resource_name.to_string(), configs);
    }
    Ok(out)
}

fn resource(kind: i8, name: &str, keys: &[&str]) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configuration_keys(Some(
            keys.iter()
                .map(|k| StrBytes::from_string(k.to_string()))
                .collect(),
        ))
}

impl Admin {
    /// The values of `keys` (defaults included) for every topic of `topics`, in one request.
    pub fn topic_configs(
        &mut self,
        topics: &[String],
        keys: &[&str],
    ) -> Result<BTreeMap<String, Configs>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let resources = topics
            .iter()
            .map(|t| resource(TOPIC_RESOURCE, t, keys))
            .collect();
        describe(self.bootstrap_connection(), resources, |_| true)
    }

    /// The dynamic (per-broker or cluster-wide) values of `keys` on `broker`; static and
    /// default values are left out.
    pub fn broker_dynamic_configs(&self, broker: &BrokerInfo, keys: &[&str]) -> Result<Configs> {
        let mut conn = self.open(broker)?;
        let resources = vec![resource(BROKER_RESOURCE, &broker.id.to_string(), keys)];
        let mut all = describe(&mut conn, resources, |source| {
            matches!(source, DYNAMIC_BROKER | DYNAMIC_DEFAULT_BROKER)
        })?;
        Ok(all.remove(&broker.id.to_string()).unwrap_or_default())
    }
}
