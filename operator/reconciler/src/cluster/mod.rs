//! `KafkaCluster` reconciliation: read (the only steps with a client: Kubernetes objects and
//! the running cluster's state) -> validate (pure) -> decide the day-2 step (pure: scale,
//! roll, rebalance; storage changes) -> build (pure) -> apply (server-side apply in a fixed order, delete
//! leftovers, the PodMonitor where its kind is served, the day-2 action, status).

pub mod build;
pub mod cert_manager;
pub mod day2;
pub mod drift;
pub mod events;
pub mod listeners;
pub mod lost_voter;
pub mod monitoring;
pub mod pki;
pub mod rack_binding;
pub mod reconcile;
pub mod roll;
pub mod scale;
pub mod status;
pub mod storage;
pub mod validate;
mod volumes;

pub use reconcile::{Error, reconcile};

/// Deletes `name` (in the background, as kubectl does); one already gone counts as deleted.
pub(crate) async fn delete_if_present<K>(
    api: &kube::Api<K>,
    kind: &'static str,
    name: String,
) -> Result<(), reconcile::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .delete(&name, &kube::api::DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(reconcile::Error::Delete { kind, name, source }),
    }
}

/// Server-side applies `object` as the operator's field manager, taking over fields others set.
pub(crate) async fn force_apply<K>(
    api: &kube::Api<K>,
    kind: &'static str,
    name: &str,
    object: &K,
) -> Result<K, reconcile::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = kube::api::PatchParams::apply(crate::names::MANAGER).force();
    api.patch(name, &params, &kube::api::Patch::Apply(object))
        .await
        .map_err(|source| reconcile::Error::Apply {
            kind,
            name: name.to_string(),
            source,
        })
}

/// Whether the API server serves `plural` in `group/version` (a kind defined by a CRD that may
/// not be installed): its discovery document lists it. A 404 is a group version not served.
/// Discovery is readable by every authenticated client, so this needs no RBAC rule.
pub(crate) async fn served(
    ctx: &crate::context::Context,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<bool, kube::Error> {
    match ctx
        .client
        .list_api_group_resources(&format!("{group}/{version}"))
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Brings the custom resources of `resource` this cluster controls to `desired`: each applied
/// where it changed, and any other the cluster controls (by its labels and controller
/// reference) deleted. For kinds not compiled in (`kube::api::DynamicObject`).
pub(crate) async fn converge_dynamic(
    ctx: &crate::context::Context,
    cluster: &validate::ValidatedCluster,
    resource: &kube::api::ApiResource,
    kind: &'static str,
    desired: &[kube::api::DynamicObject],
) -> Result<(), reconcile::Error> {
    use kube::ResourceExt;
    let names = &cluster.names;
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(ctx.client.clone(), &names.namespace, resource);
    let observed = api
        .list(&kube::api::ListParams::default().labels(&names.owned_selector()))
        .await
        .map_err(|source| reconcile::Error::Read { kind, source })?
        .items;
    for object in desired {
        let name = object.name_any();
        let current = observed.iter().find(|o| o.name_any() == name);
        if !current.is_some_and(|o| reconcile::up_to_date(o, object)) {
            tracing::info!(kind, %name, "applying");
            force_apply(&api, kind, &name, object).await?;
        }
    }
    let controlled = |o: &kube::api::DynamicObject| {
        o.owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == cluster.uid)
    };
    let leftovers = observed
        .iter()
        .filter(|o| controlled(o) && !desired.iter().any(|d| d.name_any() == o.name_any()));
    for leftover in leftovers {
        let name = leftover.name_any();
        tracing::info!(kind, %name, "deleting leftover");
        delete_if_present(&api, kind, name).await?;
    }
    Ok(())
}
