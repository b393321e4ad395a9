//! The storage step's requests to the API server (the decisions are `storage.rs`'s): reading
//! the claims' StorageClass, asking claims for a larger size, and deleting the StatefulSet with
//! its pods orphaned so it can be applied again with a new claim template.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Api, ResourceExt};
use tracing::info;

use super::reconcile::Error;
use super::storage;
use super::validate::ValidatedCluster;
use crate::context::Context;

/// How long a reconcile waits for the garbage collector to remove a StatefulSet deleted with
/// its pods orphaned (it takes well under a second on a healthy cluster).
const ORPHAN_WAIT: Duration = Duration::from_secs(30);

/// The storage step (`storage.rs`), after reading the claims' StorageClass when a claim must
/// grow (cluster-scoped: `get storageclasses`).
pub(super) async fn plan(
    ctx: &Context,
    cluster: &ValidatedCluster,
    statefulset: Option<&StatefulSet>,
    claims: &[PersistentVolumeClaim],
) -> Result<storage::Plan, Error> {
    let mut observed = storage::Observed {
        names: &cluster.names,
        spec: &cluster.spec.storage,
        statefulset,
        claims,
        expansion_allowed: None,
    };
    if let Some(class) = storage::class_to_check(&observed) {
        let allowed = if class.is_empty() {
            false
        } else {
            let api: Api<StorageClass> = Api::all(ctx.client.clone());
            let found = api.get_opt(&class).await.map_err(|source| Error::Read {
                kind: "StorageClass",
                source,
            })?;
            found.and_then(|c| c.allow_volume_expansion) == Some(true)
        };
        observed.expansion_allowed = Some(allowed);
    }
    Ok(storage::plan(&observed))
}

/// Asks each claim the plan names for the new size. The volume grows later (the CSI driver,
/// and the kubelet for the file system, while the broker runs); status follows its capacity.
pub(super) async fn grow_claims(
    ctx: &Context,
    cluster: &ValidatedCluster,
    plan: &storage::Plan,
) -> Result<(), Error> {
    let Some(size) = &plan.effective.size else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &cluster.names.namespace);
    let patch = serde_json::json!({"spec": {"resources": {"requests": {"storage": size}}}});
    for name in &plan.grow {
        info!(claim = %name, size = %size.0, "growing volume claim");
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::GrowClaim {
                name: name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Deletes the StatefulSet with its pods orphaned (they keep running, and the StatefulSet
/// applied next adopts them through its selector, so no broker restarts) and waits until the
/// garbage collector has removed it, so the apply that follows creates it anew with the
/// changed claim template, which an update may not change.
pub(super) async fn orphan_statefulset(
    ctx: &Context,
    ns: &str,
    sts: &StatefulSet,
) -> Result<(), Error> {
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let name = sts.name_any();
    let fail = |message: String| Error::Recreate {
        name: name.clone(),
        message,
    };
    info!(%name, "re-creating the StatefulSet for its claim template: deleting it, pods orphaned");
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: sts.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(fail(e.to_string())),
    }
    let deadline = Instant::now() + ORPHAN_WAIT;
    loop {
        match api.get_opt(&name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(Some(_)) => {
                return Err(fail(format!(
                    "still being deleted after {}s; the next reconcile goes on",
                    ORPHAN_WAIT.as_secs()
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
}
