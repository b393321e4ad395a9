//! The ClusterRoleBinding of a rack-aware cluster: binds the chart's broker-rack ClusterRole
//! (`get` on nodes, nothing else) to the cluster's broker ServiceAccount, so the brokers' init
//! container can read its Node's topology label. One per cluster, so only the brokers of
//! clusters with `spec.rack` can read Nodes (as Strimzi binds per cluster).
//!
//! Cluster-scoped, so it cannot be owned by the (namespaced) cluster: garbage collection never
//! removes it. The reconciler deletes it when `spec.rack` goes and, through the cluster's
//! finalizer, when the cluster is deleted (`cluster/rack_binding.rs`).

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::RackInit;
use crate::cluster::validate::ValidatedCluster;
use crate::names::CLUSTER_NAMESPACE_LABEL;

/// The binding, where `spec.rack` is set.
pub fn rack_binding(cluster: &ValidatedCluster, rack: &RackInit) -> Option<ClusterRoleBinding> {
    cluster.spec.rack.as_ref()?;
    let mut labels = cluster.names.labels();
    labels.insert(
        CLUSTER_NAMESPACE_LABEL.into(),
        cluster.names.namespace.clone(),
    );
    Some(ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(cluster.names.rack_binding()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: rack.cluster_role.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: cluster.names.statefulset(),
            namespace: Some(cluster.names.namespace.clone()),
            api_group: None,
        }]),
    })
}
