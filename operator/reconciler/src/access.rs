//! How the operator's admin connection reaches a cluster: the listener it uses (internal, with
//! SCRAM where there is one: `cluster/listeners.rs`), the CA certificates it trusts there and
//! the user it logs in as, read from the Secrets the cluster owns. Pure: the callers read the
//! Secrets.

use k8s_openapi::api::core::v1::Secret;
use krait_admin::{SaslCredentials, SaslMechanism, Security};
use krait_crd::cluster::{GenericListener, KafkaCluster, ListenerStatus};
use krait_tls::ClientTlsSettings;

use crate::cluster::build::secret::{CA_CERT_KEY, PASSWORD_KEY};
use crate::cluster::listeners::{
    OPERATOR_USER, SCRAM_MECHANISM, operator_listener, validate_listeners,
};
use crate::kafka::AdminEndpoint;
use crate::names::ClusterNames;

/// The parts of a listener the connection depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminListener {
    pub bootstrap: String,
    pub tls: bool,
    pub scram: bool,
}

impl AdminListener {
    /// The operator's listener of a validated spec.
    pub fn of(names: &ClusterNames, listeners: &[GenericListener]) -> Self {
        let l = operator_listener(listeners);
        Self {
            bootstrap: names.bootstrap_address(l.port),
            tls: l.tls,
            scram: l.scram(),
        }
    }

    /// The operator's listener as the cluster's status reports its listeners (what the
    /// cluster reconcile resolved: a cluster made before listeners were a list keeps its
    /// plaintext one), else as its spec asks for them.
    pub fn of_cluster(names: &ClusterNames, cluster: &KafkaCluster) -> Option<Self> {
        let reported = cluster
            .status
            .as_ref()
            .map(|s| s.listeners.as_slice())
            .unwrap_or_default();
        let internal = |l: &&ListenerStatus| l.kind == "internal";
        let chosen = reported
            .iter()
            .filter(internal)
            .find(|l| l.sasl_mechanism.is_some())
            .or_else(|| reported.iter().find(internal));
        if let Some(l) = chosen {
            return Some(Self {
                bootstrap: l.bootstrap_servers.clone(),
                tls: l.ca_secret.is_some(),
                scram: l.sasl_mechanism.is_some(),
            });
        }
        let listeners = validate_listeners(&cluster.spec).ok()?;
        Some(Self::of(names, &listeners))
    }
}

/// The endpoint for `listener`, trusting the cluster CA's certificates and logging in as the
/// operator's user with the Secrets in `secrets`. A missing Secret leaves its part out; the
/// connection then fails with the broker's or the TLS library's reason, which is what a
/// reconcile reports.
pub fn admin_endpoint(
    names: &ClusterNames,
    listener: &AdminListener,
    secrets: &[Secret],
) -> AdminEndpoint {
    let value = |secret: String, key: &str| {
        secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(secret.as_str()))
            .and_then(|s| s.data.as_ref()?.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let tls = listener.tls.then(|| ClientTlsSettings {
        truststore_pem: value(names.cluster_ca_cert_secret(), CA_CERT_KEY),
        ..ClientTlsSettings::default()
    });
    let sasl = listener.scram.then(|| {
        value(names.operator_credentials_secret(), PASSWORD_KEY).and_then(|password| {
            Some(SaslCredentials {
                mechanism: SaslMechanism::from_name(SCRAM_MECHANISM)?,
                username: OPERATOR_USER.into(),
                password,
            })
        })
    });
    AdminEndpoint {
        bootstrap: listener.bootstrap.clone(),
        security: Security {
            tls,
            sasl: sasl.flatten(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::listeners::security_protocol;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn secret(name: &str, key: &str, value: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_operator_logs_in_with_scram_over_tls_trusting_the_cluster_ca() {
        let names = ClusterNames::new("main", "kafka");
        let listeners = vec![
            GenericListener::plaintext("plain", 9092),
            GenericListener::default_secure(),
        ];
        let listener = AdminListener::of(&names, &listeners);
        assert_eq!(listener.bootstrap, "main-bootstrap.kafka.svc:9094");
        assert_eq!(security_protocol(operator_listener(&listeners)), "SASL_SSL");
        let secrets = [
            secret(
                "main-cluster-ca-cert",
                "ca.crt",
                "-----BEGIN CERTIFICATE-----",
            ),
            secret("main-operator-credentials", "password", "s3cret"),
        ];
        let endpoint = admin_endpoint(&names, &listener, &secrets);
        assert_eq!(endpoint.security.protocol(), "SASL_SSL");
        let tls = endpoint.security.tls.unwrap();
        assert!(tls.verify_hostname);
        assert_eq!(
            tls.truststore_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----")
        );
        let sasl = endpoint.security.sasl.unwrap();
        assert_eq!(sasl.username, OPERATOR_USER);
        assert_eq!(sasl.password, "s3cret");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        let bare = admin_endpoint(&names, &AdminListener::of(&names, &listeners[..1]), &[]);
        assert_eq!(bare.security.protocol(), "PLAINTEXT");
    }
}
