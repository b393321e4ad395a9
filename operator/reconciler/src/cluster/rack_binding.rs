//! Applies and removes a rack-aware cluster's ClusterRoleBinding (`build/clusterrolebinding.rs`)
//! and the finalizer that guards it. A cluster-scoped object cannot have a namespaced owner,
//! so garbage collection would never delete it: the finalizer `krait.dev/rack-binding` is added
//! before the binding is first applied and removed only once the binding is gone (when
//! `spec.rack` is removed, or when the cluster is deleted).
//!
//! The binding is looked up only where one may exist (`spec.rack` set, or the finalizer still
//! there), so a cluster without racks asks nothing cluster-scoped of the API server.

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use krait_crd::KafkaCluster;
use kube::{Api, ResourceExt};
use tracing::info;

use super::reconcile::{Error, merge_patch, up_to_date};
use crate::context::Context;
use crate::names::{CLUSTER_NAMESPACE_LABEL, ClusterNames, MANAGER};

/// Held by a cluster while its rack ClusterRoleBinding may exist.
pub const RACK_FINALIZER: &str = "krait.dev/rack-binding";
const KIND: &str = "ClusterRoleBinding";

fn holds_finalizer(cluster: &KafkaCluster) -> bool {
    cluster.finalizers().iter().any(|f| f == RACK_FINALIZER)
}

/// Brings the binding to `desired`: the finalizer first, then the binding applied where it
/// changed; or, without one desired, the binding deleted and then the finalizer dropped.
pub async fn converge(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &ClusterNames,
    desired: Option<&ClusterRoleBinding>,
) -> Result<(), Error> {
    let held = holds_finalizer(cluster);
    if desired.is_none() && !held {
        return Ok(());
    }
    let api: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    let name = names.rack_binding();
    let observed = api
        .get_opt(&name)
        .await
        .map_err(|source| Error::Read { kind: KIND, source })?;
    let Some(desired) = desired else {
        delete(&api, names, observed.as_ref()).await?;
        return set_finalizer(ctx, cluster, false).await;
    };
    if !held {
        set_finalizer(ctx, cluster, true).await?;
    }
    if observed.as_ref().is_some_and(|o| up_to_date(o, desired)) {
        return Ok(());
    }
    // A binding's roleRef cannot change (the API server refuses it): one naming another
    // ClusterRole (the chart installed under another release name) is replaced.
    if observed
        .as_ref()
        .is_some_and(|o| o.role_ref != desired.role_ref)
    {
        delete(&api, names, observed.as_ref()).await?;
    }
    info!(kind = KIND, %name, "applying");
    super::force_apply(&api, KIND, &name, desired)
        .await
        .map(drop)
}

/// A cluster being deleted: its binding goes, then the finalizer, which lets the deletion
/// finish. Nothing to do for a cluster that never had one.
pub async fn release(ctx: &Context, cluster: &KafkaCluster) -> Result<(), Error> {
    if !holds_finalizer(cluster) {
        return Ok(());
    }
    let names = ClusterNames::new(
        &cluster.name_any(),
        &cluster.namespace().unwrap_or_default(),
    );
    let api: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    let observed = api
        .get_opt(&names.rack_binding())
        .await
        .map_err(|source| Error::Read { kind: KIND, source })?;
    delete(&api, &names, observed.as_ref()).await?;
    set_finalizer(ctx, cluster, false).await
}

/// Deletes the observed binding if it is this cluster's (someone else's object of the same name
/// is left alone).
async fn delete(
    api: &Api<ClusterRoleBinding>,
    names: &ClusterNames,
    observed: Option<&ClusterRoleBinding>,
) -> Result<(), Error> {
    let ours = observed.is_some_and(|b| {
        let labels = b.labels();
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some(MANAGER)
            && labels.get("app.kubernetes.io/instance") == Some(&names.cluster)
            && labels.get(CLUSTER_NAMESPACE_LABEL) == Some(&names.namespace)
    });
    if !ours {
        return Ok(());
    }
    let name = names.rack_binding();
    info!(kind = KIND, %name, "deleting");
    super::delete_if_present(api, KIND, name).await
}

/// Adds or removes the finalizer with a merge patch of the whole list, guarded by the
/// resourceVersion read, so a concurrent change to the finalizers is a conflict (retried on the
/// next reconcile) rather than lost.
async fn set_finalizer(ctx: &Context, cluster: &KafkaCluster, hold: bool) -> Result<(), Error> {
    let mut finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != RACK_FINALIZER)
        .cloned()
        .collect();
    if hold {
        finalizers.push(RACK_FINALIZER.into());
    } else if finalizers.len() == cluster.finalizers().len() {
        return Ok(());
    }
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cluster.resource_version(),
    }});
    merge_patch(ctx, cluster, &patch)
        .await
        .map_err(Error::Finalizer)
}
