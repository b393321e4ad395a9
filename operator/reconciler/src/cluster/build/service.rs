//! The cluster's Services: a headless one giving each broker a stable DNS name (what brokers
//! advertise and what Raft voters are addressed by), a bootstrap one for clients' first
//! connection, and with an external listener one Service per broker.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use krait_crd::cluster::ListenerType;

use super::owned_meta;
use crate::cluster::listeners;
use crate::cluster::validate::ValidatedCluster;
use crate::names::{CLUSTER_PORT, HTTP_PORT, POD_INDEX_LABEL};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

pub fn headless_service(cluster: &ValidatedCluster) -> Service {
    Service {
        metadata: owned_meta(cluster, cluster.names.headless_service()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            // Brokers must find each other (Raft voters) before any of them is Ready.
            publish_not_ready_addresses: Some(true),
            selector: Some(cluster.names.selector_labels()),
            ports: Some({
                let mut ports = internal_ports(cluster);
                ports.push(port("cluster", CLUSTER_PORT));
                ports.push(port("http", HTTP_PORT));
                ports
            }),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

pub fn bootstrap_service(cluster: &ValidatedCluster) -> Service {
    Service {
        metadata: owned_meta(cluster, cluster.names.bootstrap_service()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(cluster.names.selector_labels()),
            ports: Some(internal_ports(cluster)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// One Service per broker, selecting its pod by the ordinal label, so each advertised
/// external address reaches exactly that broker. `running` is the StatefulSet's size, which
/// exceeds `spec.replicas` while leaving brokers drain: their clients keep their address.
pub fn external_services(cluster: &ValidatedCluster, running: i32) -> Vec<Service> {
    let Some(external) = cluster
        .listeners
        .iter()
        .find(|l| l.kind != ListenerType::Internal)
    else {
        return Vec::new();
    };
    (0..cluster.spec.replicas.max(running))
        .map(|id| {
            let mut metadata = owned_meta(cluster, cluster.names.external_service(id));
            if !external.annotations.is_empty() {
                metadata.annotations = Some(external.annotations.clone());
            }
            let selector = broker_selector(cluster, id);
            let mut ports = port("external", external.port);
            ports.node_port = external.node_port_base.map(|base| base + id);
            let kind = match external.kind {
                ListenerType::LoadBalancer => "LoadBalancer",
                ListenerType::NodePort | ListenerType::Internal => "NodePort",
            };
            Service {
                metadata,
                spec: Some(ServiceSpec {
                    type_: Some(kind.into()),
                    selector: Some(selector),
                    ports: Some(vec![ports]),
                    ..ServiceSpec::default()
                }),
                status: None,
            }
        })
        .collect::<Vec<_>>()
}

/// A port for each internal listener, named as the container's: the first `kafka`, the
/// others after their listener.
fn internal_ports(cluster: &ValidatedCluster) -> Vec<ServicePort> {
    let primary = listeners::primary(&cluster.listeners);
    cluster
        .listeners
        .iter()
        .filter(|l| l.kind == ListenerType::Internal)
        .map(|l| {
            let name = if l.name == primary.name {
                "kafka"
            } else {
                &l.name
            };
            port(name, l.port)
        })
        .collect()
}

/// Selector of one broker's pod: the StatefulSet's pod-index label is its broker id.
fn broker_selector(cluster: &ValidatedCluster, id: i32) -> BTreeMap<String, String> {
    let mut selector = cluster.names.selector_labels();
    selector.insert(POD_INDEX_LABEL.into(), id.to_string());
    selector
}
