//! Applies or removes the cluster's PodMonitor (`build/podmonitor.rs`), and only where the API
//! server serves the Prometheus Operator's PodMonitor kind: each reconcile asks API discovery
//! (`GET /apis/monitoring.coreos.com/v1`, which every authenticated client may read, no RBAC
//! rule needed), so CRDs installed after the cluster are picked up by its next reconcile.
//! Where the kind is not served nothing is asked of `monitoring.coreos.com` and the reconcile
//! goes on: [`pod_monitor_condition`] says why in status, and its change is told as an event
//! (`cluster/events.rs`). Must not fail a reconcile because monitoring is not installed.

use kube::ResourceExt;
use kube::api::DynamicObject;
use tracing::warn;

use super::build::podmonitor::{
    METRICS_PATH, METRICS_PORT_NAME, MONITORING_GROUP, MONITORING_VERSION, POD_MONITORS,
    pod_monitor_resource,
};
use super::reconcile::Error;
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
    let served = match super::served(ctx, MONITORING_GROUP, MONITORING_VERSION, POD_MONITORS).await
    {
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
    let desired: Vec<DynamicObject> = desired.cloned().into_iter().collect();
    super::converge_dynamic(ctx, cluster, &pod_monitor_resource(), KIND, &desired).await?;
    Ok(match desired.first() {
        Some(monitor) => PodMonitorState::Applied {
            name: monitor.name_any(),
            interval: monitor.data["spec"]["podMetricsEndpoints"][0]["interval"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        },
        None => PodMonitorState::Disabled,
    })
}
