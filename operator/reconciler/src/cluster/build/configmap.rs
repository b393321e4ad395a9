//! The brokers' ConfigMap: the spec's broker config as the `KRAIT_*` environment variables the
//! broker reads (loaded with `envFrom`), plus the original Kafka names for people reading it.

use std::fmt::Write;

use k8s_openapi::api::core::v1::ConfigMap;

use super::owned_meta;
use crate::cluster::validate::{BROKER_CONFIG_ENV, ValidatedCluster};

/// Key holding the config with Kafka's names, in `server.properties` form. It does not match
/// the environment-variable syntax, so `envFrom` skips it.
pub const PROPERTIES_KEY: &str = "server.properties";

pub fn config_map(cluster: &ValidatedCluster) -> ConfigMap {
    let mut data = cluster.broker_env.clone();
    let mut properties = String::new();
    for (key, var) in BROKER_CONFIG_ENV {
        if let Some(value) = cluster.broker_env.get(*var) {
            let _ = writeln!(properties, "{key}={value}");
        }
    }
    data.insert(PROPERTIES_KEY.to_string(), properties);
    ConfigMap {
        metadata: owned_meta(cluster, cluster.names.config_map()),
        data: Some(data),
        ..ConfigMap::default()
    }
}
