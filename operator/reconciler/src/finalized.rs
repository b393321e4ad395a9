//! The shell both resource reconcilers (`KafkaTopic`, `KafkaUser`) run in: their finalizer
//! (kube's: added before the first apply, removed after a successful cleanup), the reconcile
//! metrics, and a warning event on the resource when a reconcile fails. Decides nothing.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::events;

/// A reconciler's error, as the shell needs it.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// Short label for metrics.
    fn reason(&self) -> &'static str;
    /// The finalizer itself failed (adding or removing it), with why.
    fn finalizer(why: String) -> Self;
}

/// Runs `apply` (or `cleanup` once the resource is being deleted) under finalizer `name`,
/// records the reconcile for `kind` in the metrics, and publishes a failure as an event.
pub async fn reconcile<K, E, A, AF, C, CF>(
    object: Arc<K>,
    ctx: &Context,
    name: &str,
    kind: &'static str,
    apply: A,
    cleanup: C,
) -> Result<Action, E>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize,
    E: ReconcileError,
    A: FnOnce(Arc<K>) -> AF,
    AF: Future<Output = Result<Action, E>>,
    C: FnOnce(Arc<K>) -> CF,
    CF: Future<Output = Result<Action, E>>,
{
    let started = Instant::now();
    let object_ref = object.object_ref(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let result = finalizer(&api, name, object, |event| async {
        match event {
            Event::Apply(object) => apply(object).await,
            Event::Cleanup(object) => cleanup(object).await,
        }
    })
    .await
    .map_err(|e| match e {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        other => E::finalizer(other.to_string()),
    });
    ctx.metrics.record(
        kind,
        started.elapsed(),
        result.as_ref().err().map(E::reason),
    );
    if let Err(error) = &result {
        let note = events::failure(&error.to_string());
        ctx.recorder.publish_all(&object_ref, &[note]).await;
    }
    result
}
