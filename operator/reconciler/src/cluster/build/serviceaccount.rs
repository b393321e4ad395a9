//! The brokers' ServiceAccount: an identity with no API token mounted by default, since brokers
//! never talk to the Kubernetes API. Only the init container of a rack-aware cluster gets a
//! token (projected into it alone, `statefulset.rs`), to read its Node's topology label.

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
