//! The cert-manager `Certificate` of each broker, where `spec.clusterCa.issuerRef` names the
//! issuer that signs the brokers' certificates (`cluster/pki/issuer.rs` reads what it writes).
//! Like the PodMonitor, the kind is not compiled in (a `DynamicObject` of
//! [`certificate_resource`]) and is applied only where the API server serves it
//! (`cluster/cert_manager.rs`).
//!
//! Each asks for what the operator's own CA would sign (`pki/cert.rs`): the broker's DNS names
//! (and external host), its node id as a URI, server and client authentication (the cluster
//! port is mutual TLS), an ECDSA P-256 key in PKCS#8 that is new at each renewal, valid
//! `validityDays` and renewed `renewalDays` before its end. The Secret cert-manager writes
//! carries the cluster's labels (`secretTemplate`), so the reconcile finds it with the rest.

use std::collections::BTreeSet;

use krait_crd::cluster::IssuerRef;
use kube::api::{ApiResource, DynamicObject};
use serde_json::json;

use super::owned_meta;
use crate::cluster::listeners;
use crate::cluster::pki::cert::{broker_alt_names, node_uri};
use crate::cluster::validate::ValidatedCluster;

/// cert-manager's API group.
pub const CERT_MANAGER_GROUP: &str = "cert-manager.io";
/// The version of it the operator writes.
pub const CERT_MANAGER_VERSION: &str = "v1";
/// The Certificate's plural, as discovery lists it.
pub const CERTIFICATES: &str = "certificates";

/// `cert-manager.io/v1` `Certificate`, for a dynamic `Api`.
pub fn certificate_resource() -> ApiResource {
    ApiResource {
        group: CERT_MANAGER_GROUP.into(),
        version: CERT_MANAGER_VERSION.into(),
        api_version: format!("{CERT_MANAGER_GROUP}/{CERT_MANAGER_VERSION}"),
        kind: "Certificate".into(),
        plural: CERTIFICATES.into(),
    }
}

/// Each of `brokers`' Certificates, where `spec.clusterCa.issuerRef` is set; none otherwise.
pub fn broker_certificates(
    cluster: &ValidatedCluster,
    brokers: &BTreeSet<i32>,
) -> Vec<DynamicObject> {
    let ca = &cluster.spec.cluster_ca;
    let Some(issuer) = &ca.issuer_ref else {
        return Vec::new();
    };
    let external = listeners::external_hosts(&cluster.listeners);
    brokers
        .iter()
        .map(|&id| {
            let name = cluster.names.broker_certificate(id);
            let host = external.get(&id).map(String::as_str);
            let (dns_names, ip_addresses) = broker_alt_names(&cluster.names, id, host);
            let mut object = DynamicObject::new(&name, &certificate_resource());
            object.metadata = owned_meta(cluster, name);
            object.data(json!({
                "spec": {
                    "secretName": cluster.names.broker_certificate_secret(id),
                    "secretTemplate": {"labels": cluster.names.labels()},
                    "commonName": cluster.names.pod(id),
                    "subject": {"organizations": ["krait.dev"]},
                    "dnsNames": dns_names,
                    "ipAddresses": ip_addresses,
                    "uris": [node_uri(id)],
                    "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
                    "duration": hours(ca.validity_days),
                    "renewBefore": hours(ca.renewal_days),
                    "privateKey": {
                        "algorithm": "ECDSA",
                        "size": 256,
                        "encoding": "PKCS8",
                        "rotationPolicy": "Always",
                    },
                    "issuerRef": issuer_ref(issuer),
                }
            }))
        })
        .collect()
}

fn issuer_ref(issuer: &IssuerRef) -> serde_json::Value {
    json!({"name": issuer.name, "kind": issuer.kind.as_str(), "group": issuer.group})
}

/// A Go duration of `days` days, as cert-manager reads `duration` and `renewBefore`.
fn hours(days: i32) -> String {
    format!("{}h", i64::from(days) * 24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::validate::validate;
    use krait_crd::KafkaCluster;

    fn cluster(issuer: serde_json::Value) -> ValidatedCluster {
        let cluster: KafkaCluster = serde_json::from_value(json!({
            "apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "main", "namespace": "kafka", "uid": "u-1"},
            "spec": {"replicas": 3, "image": "krait:test", "storage": {"size": "10Gi"},
                     "clusterCa": {"validityDays": 90, "renewalDays": 20, "issuerRef": issuer}}
        }))
        .unwrap();
        validate(&cluster).unwrap()
    }

    #[test]
    fn each_broker_gets_a_certificate_naming_it_as_its_own_ca_would() {
        let c = cluster(json!({"name": "corp-ca", "kind": "ClusterIssuer"}));
        let certs = broker_certificates(&c, &BTreeSet::from([0, 1, 2]));
        assert_eq!(certs.len(), 3);
        let one = &certs[1];
        assert_eq!(one.metadata.name.as_deref(), Some("main-1"));
        let spec = &one.data["spec"];
        assert_eq!(spec["secretName"], "main-1-tls");
        assert_eq!(spec["uris"][0], node_uri(1));
        assert_eq!(spec["dnsNames"][0], "main-1.main-brokers");
        assert_eq!(spec["duration"], "2160h");
        assert_eq!(spec["renewBefore"], "480h");
        assert_eq!(spec["privateKey"]["encoding"], "PKCS8");
        assert_eq!(
            spec["issuerRef"],
            json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        );
        assert_eq!(
            spec["secretTemplate"]["labels"]["app.kubernetes.io/instance"],
            "main"
        );
        assert!(
            spec["usages"]
                .as_array()
                .unwrap()
                .contains(&json!("client auth")),
            "the cluster port is mutual TLS"
        );
        let owner = &one.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, "u-1");
    }

    #[test]
    fn without_an_issuer_there_is_no_certificate() {
        let mut c = cluster(json!({"name": "x"}));
        c.spec.cluster_ca.issuer_ref = None;
        assert!(broker_certificates(&c, &BTreeSet::from([0])).is_empty());
    }
}
