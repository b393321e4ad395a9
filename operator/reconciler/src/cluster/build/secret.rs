//! The Secrets of the cluster's PKI (`cluster/pki`): the CA's key (the operator's alone), the
//! CA bundle brokers and clients trust, and the brokers' keystores. Pure: the key material
//! comes in with the [`Pki`]; nothing is generated here.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::owned_meta;
use crate::cluster::listeners::{OPERATOR_USER, SCRAM_MECHANISM};
use crate::cluster::pki::{CaMaterial, Pki, Stored};
use crate::cluster::validate::ValidatedCluster;
use crate::names::ClusterNames;

/// On the CA Secret: the generation of the CA in `ca.crt` / `ca.key`, and of the successor in
/// `next-ca.crt` / `next-ca.key` during a renewal.
pub const CA_GENERATION_ANNOTATION: &str = "krait.dev/ca-generation";
pub const NEXT_CA_GENERATION_ANNOTATION: &str = "krait.dev/next-ca-generation";
/// Keys of the CA Secrets.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const NEXT_CA_CERT_KEY: &str = "next-ca.crt";
pub const NEXT_CA_KEY_KEY: &str = "next-ca.key";

/// Keys of the operator's credentials Secret: its SCRAM user name and password, the same as
/// a JAAS line for Kafka's Java clients, and the `--add-scram` entry the brokers create the
/// user from (`KRAIT_ADD_SCRAM`).
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";
pub const JAAS_KEY: &str = "sasl.jaas.config";
pub const ADD_SCRAM_KEY: &str = "add-scram";

/// `<cluster>-operator-credentials`: the operator's own SCRAM user, a super user wherever the
/// cluster enforces ACLs. The password is generated once (`cluster/reconcile.rs`) and kept.
pub fn operator_credentials_secret(cluster: &ValidatedCluster, password: &str) -> Secret {
    let user = OPERATOR_USER;
    let data = BTreeMap::from([
        (USERNAME_KEY.to_string(), bytes(user)),
        (PASSWORD_KEY.to_string(), bytes(password)),
        (
            JAAS_KEY.to_string(),
            bytes(&format!(
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
            )),
        ),
        (
            ADD_SCRAM_KEY.to_string(),
            bytes(&format!(
                "{SCRAM_MECHANISM}=[name={user},password={password}]"
            )),
        ),
    ]);
    secret(
        cluster,
        cluster.names.operator_credentials_secret(),
        data,
        BTreeMap::new(),
    )
}

/// The operator's password as its credentials Secret holds it, if the Secret exists.
pub fn stored_password(cluster: &ValidatedCluster, secrets: &[Secret]) -> Option<String> {
    let name = cluster.names.operator_credentials_secret();
    secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
        .and_then(|s| s.data.as_ref()?.get(PASSWORD_KEY))
        .and_then(|p| String::from_utf8(p.0.clone()).ok())
        .filter(|p| !p.is_empty())
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

fn secret(
    cluster: &ValidatedCluster,
    name: String,
    data: BTreeMap<String, ByteString>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    let mut metadata = owned_meta(cluster, name);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

fn ca_entries(
    ca: &CaMaterial,
    (cert, key, annotation): (&str, &str, &str),
    data: &mut BTreeMap<String, ByteString>,
    annotations: &mut BTreeMap<String, String>,
) {
    data.insert(cert.into(), bytes(&ca.cert_pem));
    data.insert(key.into(), bytes(&ca.key_pem));
    annotations.insert(annotation.into(), ca.generation.to_string());
}

/// `<cluster>-cluster-ca`: the signing CA's certificate and key, and its successor's during a
/// renewal.
pub fn cluster_ca_secret(cluster: &ValidatedCluster, pki: &Pki) -> Secret {
    let (mut data, mut annotations) = (BTreeMap::new(), BTreeMap::new());
    let current = (CA_CERT_KEY, CA_KEY_KEY, CA_GENERATION_ANNOTATION);
    ca_entries(&pki.ca, current, &mut data, &mut annotations);
    if let Some(next) = &pki.next_ca {
        let keys = (
            NEXT_CA_CERT_KEY,
            NEXT_CA_KEY_KEY,
            NEXT_CA_GENERATION_ANNOTATION,
        );
        ca_entries(next, keys, &mut data, &mut annotations);
    }
    secret(
        cluster,
        cluster.names.cluster_ca_secret(),
        data,
        annotations,
    )
}

/// `<cluster>-cluster-ca-cert`: `ca.crt`, every CA certificate a broker may present a
/// certificate from.
pub fn cluster_ca_cert_secret(cluster: &ValidatedCluster, pki: &Pki) -> Secret {
    let data = BTreeMap::from([(CA_CERT_KEY.to_string(), bytes(&pki.trusted_pem))]);
    let annotations = BTreeMap::from([(
        CA_GENERATION_ANNOTATION.to_string(),
        pki.ca.generation.to_string(),
    )]);
    secret(
        cluster,
        cluster.names.cluster_ca_cert_secret(),
        data,
        annotations,
    )
}

/// `<cluster>-clients-ca`: the clients CA's certificate and key (the operator's alone: it signs
/// `tls` KafkaUsers' certificates).
pub fn clients_ca_secret(cluster: &ValidatedCluster, ca: &CaMaterial) -> Secret {
    let data = BTreeMap::from([
        (CA_CERT_KEY.to_string(), bytes(&ca.cert_pem)),
        (CA_KEY_KEY.to_string(), bytes(&ca.key_pem)),
    ]);
    secret(
        cluster,
        cluster.names.clients_ca_secret(),
        data,
        BTreeMap::new(),
    )
}

/// `<cluster>-clients-ca-cert`: `ca.crt`, what mutual-TLS listeners check client certificates
/// with.
pub fn clients_ca_cert_secret(cluster: &ValidatedCluster, ca: &CaMaterial) -> Secret {
    let data = BTreeMap::from([(CA_CERT_KEY.to_string(), bytes(&ca.cert_pem))]);
    secret(
        cluster,
        cluster.names.clients_ca_cert_secret(),
        data,
        BTreeMap::new(),
    )
}

/// The clients CA as its Secret (read back) holds it.
pub fn stored_clients_ca(names: &ClusterNames, secrets: &[Secret]) -> Option<CaMaterial> {
    let name = names.clients_ca_secret();
    let secret = secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))?;
    let text = |key: &str| {
        let value = secret.data.as_ref()?.get(key)?;
        String::from_utf8(value.0.clone()).ok()
    };
    Some(CaMaterial {
        generation: 0,
        cert_pem: text(CA_CERT_KEY)?,
        key_pem: text(CA_KEY_KEY)?,
    })
}

/// `<cluster>-broker-certs`: `<pod>.pem` per broker, its key and certificate.
pub fn broker_certs_secret(cluster: &ValidatedCluster, pki: &Pki) -> Secret {
    let data = pki
        .keystores
        .iter()
        .map(|(id, pem)| (keystore_file(cluster, *id), bytes(pem)))
        .collect();
    secret(
        cluster,
        cluster.names.broker_certs_secret(),
        data,
        BTreeMap::new(),
    )
}

/// The file (and Secret key) of broker `id`'s keystore.
pub fn keystore_file(cluster: &ValidatedCluster, id: i32) -> String {
    format!("{}.pem", cluster.names.pod(id))
}

/// What the PKI Secrets (as read back) hold: the inverse of the builders above. Anything
/// missing or unreadable is left out, and the PKI step issues it anew.
pub fn stored_pki(cluster: &ValidatedCluster, secrets: &[Secret]) -> Stored {
    let names = &cluster.names;
    let find = |name: String| {
        secrets
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(&name))
    };
    let text = |secret: Option<&Secret>, key: &str| -> Option<String> {
        let value = secret?.data.as_ref()?.get(key)?;
        String::from_utf8(value.0.clone()).ok()
    };
    let generation = |secret: Option<&Secret>, annotation: &str| -> Option<i64> {
        secret?
            .metadata
            .annotations
            .as_ref()?
            .get(annotation)?
            .parse()
            .ok()
    };
    let ca_secret = find(names.cluster_ca_secret());
    let ca = |(cert, key, annotation): (&str, &str, &str)| {
        Some(CaMaterial {
            generation: generation(ca_secret, annotation)?,
            cert_pem: text(ca_secret, cert)?,
            key_pem: text(ca_secret, key)?,
        })
    };
    let brokers = find(names.broker_certs_secret());
    let prefix = format!("{}-", names.cluster);
    let keystores = brokers
        .and_then(|s| s.data.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(key, _)| {
            let id = key
                .strip_prefix(&prefix)?
                .strip_suffix(".pem")?
                .parse()
                .ok()?;
            Some((id, text(brokers, key)?))
        })
        .collect();
    Stored {
        ca: ca((CA_CERT_KEY, CA_KEY_KEY, CA_GENERATION_ANNOTATION)),
        next_ca: ca((
            NEXT_CA_CERT_KEY,
            NEXT_CA_KEY_KEY,
            NEXT_CA_GENERATION_ANNOTATION,
        )),
        trusted_pem: text(find(names.cluster_ca_cert_secret()), CA_CERT_KEY).unwrap_or_default(),
        keystores,
    }
}
