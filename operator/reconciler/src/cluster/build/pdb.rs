//! The brokers' PodDisruptionBudget: voluntary disruptions (drains, upgrades, and the
//! operator's own restarts, which are evictions) take at most one serving broker at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::owned_meta;
use crate::cluster::validate::ValidatedCluster;

pub fn pod_disruption_budget(cluster: &ValidatedCluster) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owned_meta(cluster, cluster.names.statefulset()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            // A broker that is not Ready serves nothing and sits in no ISR: evicting it (a
            // crash-looping pod restarted onto a fixed template, a drain) costs nothing, even
            // while another broker is down. The default, IfHealthyBudget, would leave two
            // crash-looping brokers unrestartable for good.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            selector: Some(LabelSelector {
                match_labels: Some(cluster.names.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}
