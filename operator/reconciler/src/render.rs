//! `krait-operator render`: the Kubernetes objects the operator would apply for `KafkaCluster`
//! manifests, from the same pure steps a reconcile runs (validate, then build for a cluster
//! that does not exist yet: `spec.replicas` brokers, the first three of them voters), with no
//! API server, so GitOps users can diff and lint them. Pure: text in, text out.
//!
//! Not rendered: the certificate Secrets, whose key material the operator generates inside the
//! cluster (the StatefulSet mounts them by name), and the owner references when the manifest
//! has no `metadata.uid` (the API server gives a cluster its uid when it is created). A
//! rack-aware cluster's init container and ClusterRoleBinding name the chart's defaults (the
//! operator image of this version, the ClusterRole of release `krait-operator`). A cluster
//! with `spec.metrics.podMonitor.enabled` gets its PodMonitor rendered, though the operator
//! applies it only where the API server serves the Prometheus Operator's kind: render has no
//! API server to ask, and says so in a comment.

use krait_crd::KafkaCluster;
use serde::Deserialize as _;
use serde_json::Value;

use crate::cluster::build::{DesiredObjects, Shape, build};
use crate::cluster::validate::validate;

/// Why a manifest cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("document {index}: not YAML: {source}")]
    Yaml {
        index: usize,
        source: serde_yaml::Error,
    },
    #[error("document {index}: not a KafkaCluster the CRD accepts: {source}")]
    Cluster {
        index: usize,
        source: serde_json::Error,
    },
    #[error("KafkaCluster {name}: invalid spec: {reason}")]
    Invalid { name: String, reason: String },
    #[error("serializing {kind} {name}: {source}")]
    Serialize {
        kind: String,
        name: String,
        source: serde_yaml::Error,
    },
}

/// Every object built for each `KafkaCluster` in `manifests` (multi-document YAML), as
/// multi-document YAML in apply order. Other kinds are skipped with a comment saying so; a
/// cluster without a namespace is rendered in `namespace`.
pub fn render(manifests: &str, namespace: &str) -> Result<String, RenderError> {
    let mut out = String::new();
    for (index, document) in serde_yaml::Deserializer::from_str(manifests).enumerate() {
        let value =
            Value::deserialize(document).map_err(|source| RenderError::Yaml { index, source })?;
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default();
        if kind != "KafkaCluster" {
            let name = value["metadata"]["name"].as_str().unwrap_or_default();
            out.push_str(&format!(
                "# {kind} {name}: not built into Kubernetes objects; skipped\n"
            ));
            continue;
        }
        let mut cluster: KafkaCluster = serde_json::from_value(value)
            .map_err(|source| RenderError::Cluster { index, source })?;
        cluster
            .metadata
            .namespace
            .get_or_insert_with(|| namespace.to_string());
        out.push_str(&render_cluster(&cluster)?);
    }
    Ok(out)
}

fn render_cluster(cluster: &KafkaCluster) -> Result<String, RenderError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let validated = validate(cluster).map_err(|e| RenderError::Invalid {
        name: name.clone(),
        reason: e.to_string(),
    })?;
    let desired = build(&validated, &Shape::initial(&validated));
    let mut out = format!(
        "# KafkaCluster {}/{name}: what the operator applies for a new cluster of {} broker(s).\n\
         # Not shown: Secrets {}, {} and {} (certificates the operator issues in the cluster).\n",
        validated.names.namespace,
        validated.spec.replicas,
        validated.names.cluster_ca_secret(),
        validated.names.cluster_ca_cert_secret(),
        validated.names.broker_certs_secret(),
    );
    if !desired.certificates.is_empty() {
        out.push_str(
            "# Certificates (cert-manager.io/v1): one per broker, signed by \
             spec.clusterCa.issuerRef; the operator copies what cert-manager issues into the \
             brokers' Secret once every broker trusts its CA.\n",
        );
    }
    if desired.pod_monitor.is_some() {
        out.push_str(&format!(
            "# PodMonitor {}: applied only where the API server serves \
             monitoring.coreos.com/v1 PodMonitor (the Prometheus Operator's CRDs), which \
             render cannot know.\n",
            validated.names.pod_monitor(),
        ));
    }
    if validated.uid.is_empty() {
        out.push_str(
            "# Owner references are left out: the manifest has no metadata.uid, which the API \
             server gives the cluster.\n",
        );
    }
    for object in objects(&desired, validated.uid.is_empty()) {
        out.push_str("---\n");
        out.push_str(&object?);
    }
    Ok(out)
}

/// The objects in apply order, each as a YAML document.
fn objects(desired: &DesiredObjects, without_owner: bool) -> Vec<Result<String, RenderError>> {
    let mut values: Vec<Value> = Vec::new();
    let mut push = |object: Result<Value, serde_json::Error>| {
        if let Ok(v) = object {
            values.push(v);
        }
    };
    push(serde_json::to_value(&desired.service_account));
    for certificate in &desired.certificates {
        push(serde_json::to_value(certificate));
    }
    if let Some(binding) = &desired.rack_binding {
        push(serde_json::to_value(binding));
    }
    push(serde_json::to_value(&desired.config_map));
    for service in &desired.services {
        push(serde_json::to_value(service));
    }
    push(serde_json::to_value(&desired.statefulset));
    push(serde_json::to_value(&desired.pdb));
    if let Some(monitor) = &desired.pod_monitor {
        push(serde_json::to_value(monitor));
    }
    values
        .into_iter()
        .map(|mut v| {
            if without_owner && let Some(meta) = v["metadata"].as_object_mut() {
                meta.remove("ownerReferences");
            }
            serde_yaml::to_string(&v).map_err(|source| RenderError::Serialize {
                kind: v["kind"].as_str().unwrap_or_default().into(),
                name: v["metadata"]["name"].as_str().unwrap_or_default().into(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "apiVersion: krait.dev/v1alpha1\nkind: KafkaCluster\n\
        metadata: {name: main}\nspec: {replicas: 3, image: krait:1, storage: {size: 1Gi}}\n";

    #[test]
    fn a_cluster_renders_its_objects_in_apply_order() {
        let out = render(CLUSTER, "kafka").unwrap();
        let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&out)
            .filter_map(|d| Value::deserialize(d).ok())
            .filter(|v| !v.is_null())
            .map(|v| v["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ConfigMap",
                "Service",
                "Service",
                "StatefulSet",
                "PodDisruptionBudget"
            ]
        );
        assert!(out.contains("namespace: kafka"));
        assert!(!out.contains("ownerReferences"), "no uid, no owner");
    }

    #[test]
    fn an_enabled_pod_monitor_is_rendered_last_and_said_to_depend_on_its_crd() {
        let monitored = CLUSTER.replace(
            "storage: {size: 1Gi}}",
            "storage: {size: 1Gi}, metrics: {podMonitor: {enabled: true, interval: 1m}}}",
        );
        let out = render(&monitored, "kafka").unwrap();
        let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&out)
            .filter_map(|d| Value::deserialize(d).ok())
            .filter(|v| !v.is_null())
            .collect();
        let last = objects.last().unwrap();
        assert_eq!(last["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(last["kind"], "PodMonitor");
        assert_eq!(last["metadata"]["name"], "main-brokers");
        assert_eq!(last["spec"]["podMetricsEndpoints"][0]["interval"], "1m");
        assert!(
            last["metadata"]["ownerReferences"].is_null(),
            "no uid, no owner"
        );
        assert!(
            out.contains("# PodMonitor main-brokers: applied only where the API server serves"),
            "{out}"
        );
        let plain = render(CLUSTER, "kafka").unwrap();
        assert!(!plain.contains("PodMonitor"), "{plain}");
    }

    #[test]
    fn an_invalid_spec_is_refused_with_the_reason() {
        let bad = CLUSTER.replace("replicas: 3", "replicas: 3, defaultReplicationFactor: 5");
        let err = render(&bad, "kafka").unwrap_err().to_string();
        assert!(err.contains("KafkaCluster main: invalid spec"), "{err}");
    }
}
