//! The Secrets of the cluster's PKI (`cluster/pki`): the CA's key (the operator's alone), the
//! CA bundle brokers and clients trust, and the brokers' keystores. Pure: the key material
//! comes in with the [`Pki`]; nothing is generated here.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::owned_meta;
use crate::cluster::listeners::{OPERATOR_USER, SCRAM_MECHANISM};
use crate::cluster::pki::issuer::{Issued, StoredIssued, Trusted};
use crate::cluster::pki::{Ca, CaMaterial, ClusterPki, IssuerPki, Pki, Stored, StoredCa, cert};
use crate::cluster::validate::ValidatedCluster;
use crate::names::ClusterNames;

/// On the CA Secret: the generation of the CA in `ca.crt` / `ca.key`, and of the successor in
/// `next-ca.crt` / `next-ca.key` during a renewal.
pub const CA_GENERATION_ANNOTATION: &str = "krait.dev/ca-generation";
pub const NEXT_CA_GENERATION_ANNOTATION: &str = "krait.dev/next-ca-generation";
/// On the CA Secret: the last value of the KafkaCluster's renewal annotation
/// (`krait.dev/renew-cluster-ca` / `krait.dev/renew-clients-ca`) the operator answered.
pub const RENEWED_FOR_ANNOTATION: &str = "krait.dev/renewed-for";
/// Keys of the CA Secrets.
pub const CA_CERT_KEY: &str = "ca.crt";
/// The keys cert-manager writes a certificate and its key to (a `kubernetes.io/tls` Secret).
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
/// On `<cluster>-cluster-ca-cert` with a cert-manager issuer: the generation of each CA
/// certificate in `ca.crt`, in order, comma-separated.
pub const CA_GENERATIONS_ANNOTATION: &str = "krait.dev/ca-generations";
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

/// A CA's own Secret: the signing CA's certificate and key, its successor's during a renewal,
/// and the last renewal request answered.
fn ca_secret(cluster: &ValidatedCluster, name: String, authority: &Ca) -> Secret {
    let (mut data, mut annotations) = (BTreeMap::new(), BTreeMap::new());
    let current = (CA_CERT_KEY, CA_KEY_KEY, CA_GENERATION_ANNOTATION);
    ca_entries(&authority.ca, current, &mut data, &mut annotations);
    if let Some(next) = &authority.next_ca {
        let keys = (
            NEXT_CA_CERT_KEY,
            NEXT_CA_KEY_KEY,
            NEXT_CA_GENERATION_ANNOTATION,
        );
        ca_entries(next, keys, &mut data, &mut annotations);
    }
    if let Some(token) = &authority.renewed_for {
        annotations.insert(RENEWED_FOR_ANNOTATION.into(), token.clone());
    }
    secret(cluster, name, data, annotations)
}

/// A CA's public Secret: `ca.crt`, its trust bundle.
fn ca_cert_secret(cluster: &ValidatedCluster, name: String, authority: &Ca) -> Secret {
    let data = BTreeMap::from([(CA_CERT_KEY.to_string(), bytes(&authority.trusted_pem))]);
    let annotations = BTreeMap::from([(
        CA_GENERATION_ANNOTATION.to_string(),
        authority.ca.generation.to_string(),
    )]);
    secret(cluster, name, data, annotations)
}

/// `<cluster>-cluster-ca`: the cluster CA's certificate and key, and its successor's during a
/// renewal.
pub fn cluster_ca_secret(cluster: &ValidatedCluster, pki: &Pki) -> Secret {
    ca_secret(cluster, cluster.names.cluster_ca_secret(), &pki.authority)
}

/// `<cluster>-cluster-ca-cert`: `ca.crt`, every CA certificate a broker may present a
/// certificate from.
pub fn cluster_ca_cert_secret(cluster: &ValidatedCluster, pki: &ClusterPki) -> Secret {
    let name = cluster.names.cluster_ca_cert_secret();
    match pki {
        ClusterPki::Operator(pki) => ca_cert_secret(cluster, name, &pki.authority),
        ClusterPki::Issuer(pki) => issuer_ca_cert_secret(cluster, name, pki),
    }
}

/// With a cert-manager issuer, the bundle also says the generation each CA certificate joined
/// at ([`CA_GENERATIONS_ANNOTATION`], in `ca.crt`'s order), which decides when the brokers may
/// present a certificate it signed (`pki/issuer.rs`).
fn issuer_ca_cert_secret(cluster: &ValidatedCluster, name: String, pki: &IssuerPki) -> Secret {
    let data = BTreeMap::from([(CA_CERT_KEY.to_string(), bytes(&pki.trusted_pem()))]);
    let generations: Vec<String> = pki
        .bundle
        .iter()
        .map(|t| t.generation.to_string())
        .collect();
    let annotations = BTreeMap::from([
        (
            CA_GENERATION_ANNOTATION.to_string(),
            pki.trust_generation.to_string(),
        ),
        (CA_GENERATIONS_ANNOTATION.to_string(), generations.join(",")),
    ]);
    secret(cluster, name, data, annotations)
}

/// `<cluster>-clients-ca`: the clients CA's certificate and key (the operator's alone: it signs
/// `tls` KafkaUsers' certificates), and its successor's during a renewal.
pub fn clients_ca_secret(cluster: &ValidatedCluster, authority: &Ca) -> Secret {
    ca_secret(cluster, cluster.names.clients_ca_secret(), authority)
}

/// `<cluster>-clients-ca-cert`: `ca.crt`, what mutual-TLS listeners check client certificates
/// with: the signing clients CA, its successor, and older ones not yet expired.
pub fn clients_ca_cert_secret(cluster: &ValidatedCluster, authority: &Ca) -> Secret {
    ca_cert_secret(cluster, cluster.names.clients_ca_cert_secret(), authority)
}

/// A CA as its two Secrets (read back) hold it. A CA without a generation annotation is
/// `unannotated`'s generation (`None`: not usable).
fn stored_ca(
    secrets: &[Secret],
    (ca_name, cert_name): (String, String),
    unannotated: Option<i64>,
) -> StoredCa {
    let find = |name: &String| {
        secrets
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(name))
    };
    let text = |secret: Option<&Secret>, key: &str| -> Option<String> {
        let value = secret?.data.as_ref()?.get(key)?;
        String::from_utf8(value.0.clone()).ok()
    };
    let ca_secret = find(&ca_name);
    let annotation =
        |key: &str| -> Option<&String> { ca_secret?.metadata.annotations.as_ref()?.get(key) };
    let ca = |(cert, key, generation): (&str, &str, &str)| {
        Some(CaMaterial {
            generation: match annotation(generation) {
                Some(g) => g.parse().ok()?,
                None => unannotated?,
            },
            cert_pem: text(ca_secret, cert)?,
            key_pem: text(ca_secret, key)?,
        })
    };
    StoredCa {
        ca: ca((CA_CERT_KEY, CA_KEY_KEY, CA_GENERATION_ANNOTATION)),
        next_ca: ca((
            NEXT_CA_CERT_KEY,
            NEXT_CA_KEY_KEY,
            NEXT_CA_GENERATION_ANNOTATION,
        ))
        .filter(|_| annotation(NEXT_CA_GENERATION_ANNOTATION).is_some()),
        trusted_pem: text(find(&cert_name), CA_CERT_KEY).unwrap_or_default(),
        renewed_for: annotation(RENEWED_FOR_ANNOTATION).cloned(),
    }
}

/// The clients CA as its Secrets (read back) hold them. The first clients CA was stored
/// without a generation: it is generation 0.
pub fn stored_clients_ca(names: &ClusterNames, secrets: &[Secret]) -> StoredCa {
    let names = (names.clients_ca_secret(), names.clients_ca_cert_secret());
    stored_ca(secrets, names, Some(0))
}

/// `<cluster>-broker-certs`: `<pod>.pem` per broker, its key and certificate.
pub fn broker_certs_secret(cluster: &ValidatedCluster, pki: &ClusterPki) -> Secret {
    let data = pki
        .keystores()
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
    Stored {
        authority: stored_ca(
            secrets,
            (names.cluster_ca_secret(), names.cluster_ca_cert_secret()),
            None,
        ),
        keystores: stored_keystores(names, secrets),
    }
}

/// With a cert-manager issuer: the trust bundle and keystores the operator stored, and what
/// cert-manager wrote to each broker's Secret (`tls.key`, `tls.crt`, `ca.crt`). A bundle stored
/// without [`CA_GENERATIONS_ANNOTATION`] (the operator's own CA's, before an issuer was named)
/// holds CA certificates of the generation it names.
pub fn stored_issued(
    cluster: &ValidatedCluster,
    brokers: impl IntoIterator<Item = i32>,
    secrets: &[Secret],
) -> StoredIssued {
    let names = &cluster.names;
    let find = |name: String| {
        secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
    };
    let text = |secret: &Secret, key: &str| -> Option<String> {
        String::from_utf8(secret.data.as_ref()?.get(key)?.0.clone()).ok()
    };
    let bundle_secret = find(names.cluster_ca_cert_secret());
    let annotation =
        |key: &str| bundle_secret.and_then(|s| s.metadata.annotations.as_ref()?.get(key).cloned());
    let pems = bundle_secret
        .and_then(|s| text(s, CA_CERT_KEY))
        .map(|pem| cert::split_pem(&pem))
        .unwrap_or_default();
    let generations: Vec<i64> = match annotation(CA_GENERATIONS_ANNOTATION) {
        Some(list) => list
            .split(',')
            .filter_map(|g| g.trim().parse().ok())
            .collect(),
        None => {
            let g = annotation(CA_GENERATION_ANNOTATION)
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            vec![g; pems.len()]
        }
    };
    let bundle = pems
        .into_iter()
        .zip(generations)
        .map(|(pem, generation)| Trusted { generation, pem })
        .collect();
    let issued = brokers
        .into_iter()
        .filter_map(|id| {
            let secret = find(names.broker_certificate_secret(id))?;
            let keystore = format!(
                "{}{}",
                text(secret, TLS_KEY_KEY)?,
                text(secret, TLS_CERT_KEY)?
            );
            let ca_pem = text(secret, CA_CERT_KEY).unwrap_or_default();
            Some((id, Issued { keystore, ca_pem }))
        })
        .collect();
    StoredIssued {
        bundle,
        keystores: stored_keystores(names, secrets),
        issued,
    }
}

/// Each broker's keystore in `<cluster>-broker-certs`, by broker id.
fn stored_keystores(names: &ClusterNames, secrets: &[Secret]) -> BTreeMap<i32, String> {
    let brokers = secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(names.broker_certs_secret().as_str()));
    let prefix = format!("{}-", names.cluster);
    brokers
        .and_then(|s| s.data.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            let id = key
                .strip_prefix(&prefix)?
                .strip_suffix(".pem")?
                .parse()
                .ok()?;
            Some((id, String::from_utf8(value.0.clone()).ok()?))
        })
        .collect()
}
