//! Writes a custom resource's status subresource for both reconcilers: one server-side apply of
//! the whole status (conditions, observedGeneration and the rest) under the operator's field
//! manager, skipped when the status is what the resource already holds, so an unchanged world
//! costs no write. It decides nothing: what the status says is the reconcilers' pure business.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::names::MANAGER;

/// Server-side applies `status` to `object`'s status subresource, unless it equals the status
/// `object` was read with.
pub async fn write_status<K>(
    client: &Client,
    object: &K,
    status: K::Status,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + HasStatus
        + Clone
        + Debug
        + DeserializeOwned,
    K::Status: PartialEq + Serialize,
{
    if object.status() == Some(&status) {
        debug!("status unchanged");
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map(drop)
}
