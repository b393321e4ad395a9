//! The brokers' ServiceAccount: an identity with no API token, since brokers never talk to
//! the Kubernetes API.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::owned_meta;
use crate::cluster::validate::ValidatedCluster;

pub fn service_account(cluster: &ValidatedCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(cluster, cluster.names.statefulset()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
