//! The `KafkaCluster` a `KafkaTopic` or `KafkaUser` names, as its reconcile sees it: absent,
//! being deleted, or present with the operator's admin connection to it (`access.rs`, with the
//! CA certificate and credentials read from the Secrets the cluster owns). Reads only.

use k8s_openapi::api::core::v1::Secret;
use krait_crd::KafkaCluster;
use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};

use crate::access::{AdminListener, admin_endpoint};
use crate::context::Context;
use crate::kafka::AdminEndpoint;
use crate::names::ClusterNames;

/// What the named cluster looks like from here.
pub enum ClusterState {
    Absent,
    Deleting,
    Present {
        /// The operator's admin connection to the cluster.
        endpoint: AdminEndpoint,
        cluster: Box<KafkaCluster>,
    },
}

/// Reads cluster `name` in namespace `ns`; `what` names the failed read.
pub async fn cluster_state(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<ClusterState, (&'static str, kube::Error)> {
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), ns);
    let cluster = api.get_opt(name).await.map_err(|e| ("KafkaCluster", e))?;
    Ok(match cluster {
        None => ClusterState::Absent,
        Some(c) if c.meta().deletion_timestamp.is_some() => ClusterState::Deleting,
        Some(c) => ClusterState::Present {
            endpoint: cluster_endpoint(ctx, &c, ns)
                .await
                .map_err(|e| ("Secret", e))?,
            cluster: Box::new(c),
        },
    })
}

/// The admin connection to `cluster` with the CA certificate and credentials its Secrets hold
/// (listed by the cluster's labels: the operator reads only Secrets it made).
async fn cluster_endpoint(
    ctx: &Context,
    cluster: &KafkaCluster,
    ns: &str,
) -> Result<AdminEndpoint, kube::Error> {
    let names = ClusterNames::new(&cluster.name_any(), ns);
    let Some(listener) = AdminListener::of_cluster(&names, cluster) else {
        // An invalid spec: the cluster reports why; the default address fails to connect.
        return Ok(AdminEndpoint::plaintext(
            &names.bootstrap_address(krait_crd::cluster::DEFAULT_KAFKA_PORT),
        ));
    };
    let secrets = if listener.tls || listener.scram {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        api.list(&ListParams::default().labels(&names.owned_selector()))
            .await?
            .items
    } else {
        Vec::new()
    };
    Ok(admin_endpoint(&names, &listener, &secrets))
}
