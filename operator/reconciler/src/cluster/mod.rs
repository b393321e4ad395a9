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
