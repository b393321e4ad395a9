//! Applies or removes the cluster's PodMonitor (`build/podmonitor.rs`), and only where the API
//! server serves the Prometheus Operator's PodMonitor kind: each reconcile asks API discovery
//! (`GET /apis/monitoring.coreos.com/v1`, which every authenticated client may read, no RBAC
//! rule needed), so CRDs installed after the cluster are picked up by its next reconcile.
//! Where the kind is not served nothing is asked of `monitoring.coreos.com` and the reconcile
//! goes on: [`pod_monitor_condition`] says why in status, and its change is told as an event
//! (`cluster/events.rs`). Must not fail a reconcile because monitoring is not installed.

use kube::api::{DynamicObject, ListParams};
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::build::podmonitor::{
    METRICS_PATH, METRICS_PORT_NAME, MONITORING_GROUP, MONITORING_VERSION, POD_MONITORS,
    pod_monitor_resource,
};
use super::reconcile::{Error, up_to_date};
use super::validate::ValidatedCluster;
use crate::conditions::{Decided, POD_MONITOR_READY};
use crate::context::Context;

const KIND: &str = "PodMonitor";
/// `PodMonitorReady` is true: the PodMonitor is applied as the spec asks.
pub const POD_MONITOR_APPLIED: &str = "PodMonitorApplied";
/// `PodMonitorReady` is false: `spec.metrics.podMonitor.enabled`, but the API server does not
/// serve `monitoring.coreos.com/v1` `podmonitors` (the Prometheus Operator's CRDs are not
/// installed), so there is none. Also the reason of the Warning event telling it.
pub const POD_MONITOR_CRD_NOT_INSTALLED: &str = "PodMonitorCRDNotInstalled";

/// What became of the cluster's PodMonitor in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodMonitorState {
    /// Not asked for (any the operator made was deleted where the kind is served).
    Disabled,
    /// Applied, or found up to date.
    Applied { name: String, interval: String },
    /// Asked for, but the API server does not serve the kind.
    NotServed,
}

/// The `PodMonitorReady` condition of a state; none while the PodMonitor is not asked for.
pub fn pod_monitor_condition(state: &PodMonitorState) -> Option<Decided> {
    match state {
        PodMonitorState::Disabled => None,
        PodMonitorState::Applied { name, interval } => Some(Decided::new(
            POD_MONITOR_READY,
            true,
            POD_MONITOR_APPLIED,
            format!(
                "PodMonitor {name} scrapes every broker's {METRICS_PATH} on port \
                 {METRICS_PORT_NAME} every {interval}"
            ),
        )),
        PodMonitorState::NotServed => Some(Decided::new(
            POD_MONITOR_READY,
            false,
            POD_MONITOR_CRD_NOT_INSTALLED,
            format!(
                "spec.metrics.podMonitor.enabled is true, but the API server does not serve \
                 {MONITORING_GROUP}/{MONITORING_VERSION} {POD_MONITORS} (the Prometheus \
                 Operator's CRDs are not installed): no PodMonitor is created until they are"
            ),
        )),
    }
}

/// Brings the cluster's PodMonitor to `desired` where the kind is served: applied where it
/// changed, and any other this cluster controls deleted (all of them when none is desired).
pub async fn converge(
    ctx: &Context,
    cluster: &ValidatedCluster,
    desired: Option<&DynamicObject>,
) -> Result<PodMonitorState, Error> {
    let served = match pod_monitors_served(ctx).await {
        Ok(served) => served,
        Err(source) if desired.is_some() => {
            return Err(Error::Read {
                kind: "the API server's monitoring.coreos.com/v1 resources",
                source,
            });
        }
        // Only a leftover could be missed: looked for again on the next reconcile.
        Err(error) => {
            warn!(%error, "API discovery failed: a leftover PodMonitor is not looked for");
            return Ok(PodMonitorState::Disabled);
        }
    };
    if !served {
        return Ok(match desired {
            Some(_) => PodMonitorState::NotServed,
            None => PodMonitorState::Disabled,
        });
    }
    let names = &cluster.names;
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &names.namespace,
        &pod_monitor_resource(),
    );
    let observed = api
        .list(&ListParams::default().labels(&names.owned_selector()))
        .await
        .map_err(|source| Error::Read { kind: KIND, source })?
        .items;
    let mut state = PodMonitorState::Disabled;
    if let Some(desired) = desired {
        let name = desired.name_any();
        let current = observed.iter().find(|o| o.name_any() == name);
        if !current.is_some_and(|o| up_to_date(o, desired)) {
            info!(kind = KIND, %name, "applying");
            super::force_apply(&api, KIND, &name, desired).await?;
        }
        let interval = desired.data["spec"]["podMetricsEndpoints"][0]["interval"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state = PodMonitorState::Applied { name, interval };
    }
    let controlled = |o: &DynamicObject| {
        o.owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == cluster.uid)
    };
    let leftovers = observed
        .iter()
        .filter(|o| controlled(o) && desired.is_none_or(|d| d.name_any() != o.name_any()));
    for leftover in leftovers {
        delete(&api, leftover.name_any()).await?;
    }
    Ok(state)
}

async fn delete(api: &Api<DynamicObject>, name: String) -> Result<(), Error> {
    info!(kind = KIND, %name, "deleting leftover");
    super::delete_if_present(api, KIND, name).await
}

/// Whether the API server serves `monitoring.coreos.com/v1` `podmonitors`: the group version's
/// discovery document lists it. A 404 is a group version not served (no CRD defines it).
async fn pod_monitors_served(ctx: &Context) -> Result<bool, kube::Error> {
    let group_version = format!("{MONITORING_GROUP}/{MONITORING_VERSION}");
    match ctx.client.list_api_group_resources(&group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == POD_MONITORS)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}
