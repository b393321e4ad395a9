//! A cluster's Kafka listeners as the brokers and their clients see them: the checks on
//! `spec.listeners` and `spec.authorization` the schema cannot make, the Kafka keys that set
//! the brokers' listeners up (`listeners`, `advertised.listeners`,
//! `listener.security.protocol.map`, `ssl.*`, `sasl.*`, the authorizer), and what
//! `status.listeners` tells clients. Pure: no client, no I/O.

use krait_crd::cluster::{
    Authorization, GenericListener, KafkaClusterSpec, ListenerStatus, ListenerType,
};

use std::collections::BTreeMap;

use super::validate::InvalidSpec;
use crate::names::{CLUSTER_PORT, CLUSTER_TLS_DIR, ClusterNames, HTTP_PORT};

/// The SCRAM user the operator's own admin connection logs in as; a super user wherever
/// the cluster enforces ACLs.
pub const OPERATOR_USER: &str = "krait-operator";
/// The SASL mechanism of `authentication.type: scram-sha-512`.
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// The broker's name for its one listener outside Kubernetes (the flag-made listener of
/// `--external-listen`).
pub const EXTERNAL_NAME: &str = "EXTERNAL";
/// The file (in the brokers' TLS directory) of the clients CA certificate mutual-TLS
/// listeners check client certificates with.
pub const CLIENTS_CA_FILE: &str = "clients-ca.crt";
/// `ssl.principal.mapping.rules` where a listener takes client certificates: a certificate
/// whose subject is just `CN=<name>` (what the operator issues KafkaUsers) is `User:<name>`,
/// as the same user logging in with SCRAM would be; any other subject is the whole DN.
pub const PRINCIPAL_MAPPING_RULES: &str = "RULE:^CN=([^,]+)$/$1/,DEFAULT";
/// Kafka's class name for ACLs in the cluster metadata; any value turns Krait's on.
pub const AUTHORIZER_CLASS: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The listeners a spec asks for (the default TLS + SCRAM one when it names none), checked.
pub fn validate_listeners(spec: &KafkaClusterSpec) -> Result<Vec<GenericListener>, InvalidSpec> {
    let listeners = spec
        .listeners
        .clone()
        .unwrap_or_else(|| vec![GenericListener::default_secure()]);
    if !listeners.iter().any(|l| l.kind == ListenerType::Internal) {
        return Err(InvalidSpec::NoInternalListener);
    }
    let mut externals = 0;
    for (i, l) in listeners.iter().enumerate() {
        let valid_name = l.name.len() <= 15
            && l.name.starts_with(|c: char| c.is_ascii_lowercase())
            && l.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let reserved = ["cluster", "http", "kafka"].contains(&l.name.as_str())
            || (l.kind == ListenerType::Internal && l.name == "external");
        if !valid_name || reserved {
            return Err(InvalidSpec::ListenerName(l.name.clone()));
        }
        if listeners[..i].iter().any(|m| m.name == l.name) {
            return Err(InvalidSpec::DuplicateListener(l.name.clone()));
        }
        if [HTTP_PORT, CLUSTER_PORT].contains(&l.port)
            || listeners[..i].iter().any(|m| m.port == l.port)
        {
            return Err(InvalidSpec::PortClash(l.port));
        }
        if l.kind == ListenerType::Internal {
            if !l.advertised_addresses.is_empty() || l.node_port_base.is_some() {
                return Err(InvalidSpec::InternalWithExternalFields(l.name.clone()));
            }
            continue;
        }
        externals += 1;
        if externals > 1 {
            return Err(InvalidSpec::SecondExternalListener(l.name.clone()));
        }
        validate_external(spec, l)?;
    }
    if let Some(auth) = &spec.authorization {
        if !listeners
            .iter()
            .any(|l| l.kind == ListenerType::Internal && l.scram())
        {
            return Err(InvalidSpec::AuthorizationWithoutScram);
        }
        for user in &auth.super_users {
            if user.trim().is_empty() || user.contains(';') {
                return Err(InvalidSpec::BadSuperUser(user.clone()));
            }
        }
    }
    Ok(listeners)
}

fn validate_external(spec: &KafkaClusterSpec, l: &GenericListener) -> Result<(), InvalidSpec> {
    let got = l.advertised_addresses.len();
    if got != spec.replicas as usize {
        return Err(InvalidSpec::AdvertisedAddressCount {
            got,
            replicas: spec.replicas,
        });
    }
    for (i, address) in l.advertised_addresses.iter().enumerate() {
        let valid = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(InvalidSpec::BadAdvertisedAddress(i, address.clone()));
        }
    }
    if let Some(base) = l.node_port_base
        && base + spec.replicas - 1 > 65535
    {
        return Err(InvalidSpec::NodePortRange {
            base,
            replicas: spec.replicas,
        });
    }
    Ok(())
}

/// The broker's name for a listener: the spec's name upper-cased, `EXTERNAL` for the one
/// outside Kubernetes.
pub fn broker_name(l: &GenericListener) -> String {
    match l.kind {
        ListenerType::Internal => l.name.to_ascii_uppercase(),
        ListenerType::NodePort | ListenerType::LoadBalancer => EXTERNAL_NAME.into(),
    }
}

/// Kafka's `security.protocol` of a listener.
pub fn security_protocol(l: &GenericListener) -> &'static str {
    match (l.tls, l.scram()) {
        (false, false) => "PLAINTEXT",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// The first internal listener: what the brokers register as their address, what the
/// bootstrap Service's `kafka` port and `status.bootstrapAddress` name.
pub fn primary(listeners: &[GenericListener]) -> &GenericListener {
    listeners
        .iter()
        .find(|l| l.kind == ListenerType::Internal)
        .expect("validated: at least one internal listener")
}

/// The internal listener the operator's admin connection uses: the first with SCRAM (it can
/// log in there, as a super user where ACLs are enforced), else the first one.
pub fn operator_listener(listeners: &[GenericListener]) -> &GenericListener {
    listeners
        .iter()
        .find(|l| l.kind == ListenerType::Internal && l.scram())
        .unwrap_or_else(|| primary(listeners))
}

/// Whether any listener logs clients in with SCRAM, so the brokers need the operator's user.
pub fn uses_scram(listeners: &[GenericListener]) -> bool {
    listeners.iter().any(GenericListener::scram)
}

/// Each broker's host for clients outside Kubernetes: the host part of the external
/// listener's `advertisedAddresses[id]`, which the broker's certificate must name.
pub fn external_hosts(listeners: &[GenericListener]) -> BTreeMap<i32, String> {
    listeners
        .iter()
        .filter(|l| l.kind != ListenerType::Internal && l.tls)
        .flat_map(|l| l.advertised_addresses.iter().enumerate())
        .filter_map(|(id, address)| {
            let (host, _) = address.rsplit_once(':')?;
            Some((i32::try_from(id).ok()?, host.to_string()))
        })
        .collect()
}

/// Whether any listener takes client certificates, so the cluster needs its clients CA.
pub fn uses_mtls(listeners: &[GenericListener]) -> bool {
    listeners.iter().any(GenericListener::mtls)
}

/// Whether any listener serves TLS, so the brokers need their keystores mounted.
pub fn uses_tls(listeners: &[GenericListener]) -> bool {
    listeners.iter().any(|l| l.tls)
}

/// The Kafka keys a broker is started with (`--override KEY=VALUE`), beyond `--listen` /
/// `--advertise` of the primary listener and the external listener's flags. Empty for the
/// plaintext listener named `plaintext` alone without ACLs: the broker's own default, so
/// clusters made before listeners were configurable keep their command line. `own_host` is
/// the broker's DNS name (with `$(POD_NAME)` for the kubelet to expand).
pub fn broker_overrides(
    listeners: &[GenericListener],
    authorization: Option<&Authorization>,
    own_host: &str,
) -> Vec<(String, String)> {
    let internal: Vec<&GenericListener> = listeners
        .iter()
        .filter(|l| l.kind == ListenerType::Internal)
        .collect();
    let defaults_only = authorization.is_none()
        && listeners.iter().all(|l| !l.tls && !l.scram())
        && internal.len() == 1
        && broker_name(internal[0]) == "PLAINTEXT";
    if defaults_only {
        return Vec::new();
    }
    let join = |f: &dyn Fn(&GenericListener) -> String| {
        internal.iter().map(|l| f(l)).collect::<Vec<_>>().join(",")
    };
    let mut keys = vec![
        (
            "listeners".to_string(),
            join(&|l| format!("{}://0.0.0.0:{}", broker_name(l), l.port)),
        ),
        (
            "advertised.listeners".to_string(),
            join(&|l| format!("{}://{own_host}:{}", broker_name(l), l.port)),
        ),
        (
            "listener.security.protocol.map".to_string(),
            listeners
                .iter()
                .map(|l| format!("{}:{}", broker_name(l), security_protocol(l)))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if uses_tls(listeners) {
        // The broker's cluster-port certificate names its pod's DNS names and the cluster's
        // Services: clients verify the same names.
        keys.push((
            "ssl.keystore.location".into(),
            format!("{CLUSTER_TLS_DIR}/$(POD_NAME).pem"),
        ));
    }
    for l in listeners.iter().filter(|l| l.mtls()) {
        let name = broker_name(l).to_ascii_lowercase();
        keys.push((
            format!("listener.name.{name}.ssl.client.auth"),
            "required".into(),
        ));
        keys.push((
            format!("listener.name.{name}.ssl.truststore.location"),
            format!("{CLUSTER_TLS_DIR}/{CLIENTS_CA_FILE}"),
        ));
    }
    if uses_mtls(listeners) {
        keys.push((
            "ssl.principal.mapping.rules".into(),
            PRINCIPAL_MAPPING_RULES.into(),
        ));
    }
    for l in listeners.iter().filter(|l| l.scram()) {
        keys.push((
            format!(
                "listener.name.{}.sasl.enabled.mechanisms",
                broker_name(l).to_ascii_lowercase()
            ),
            SCRAM_MECHANISM.into(),
        ));
    }
    if let Some(auth) = authorization {
        keys.push(("authorizer.class.name".into(), AUTHORIZER_CLASS.into()));
        keys.push(("super.users".into(), super_users(auth).join(";")));
        keys.push(("allow.everyone.if.no.acl.found".into(), "false".into()));
    }
    keys
}

/// `super.users`: the operator's user, then the spec's, each as `User:<name>` unless it names
/// a principal type.
pub fn super_users(auth: &Authorization) -> Vec<String> {
    let mut users = vec![format!("User:{OPERATOR_USER}")];
    for user in &auth.super_users {
        let user = user.trim();
        let principal = if user.contains(':') {
            user.to_string()
        } else {
            format!("User:{user}")
        };
        if !users.contains(&principal) {
            users.push(principal);
        }
    }
    users
}

/// `status.listeners`: how a client connects to each listener.
pub fn listener_statuses(
    names: &ClusterNames,
    listeners: &[GenericListener],
) -> Vec<ListenerStatus> {
    listeners
        .iter()
        .map(|l| ListenerStatus {
            name: l.name.clone(),
            kind: match l.kind {
                ListenerType::Internal => "internal",
                ListenerType::NodePort => "nodeport",
                ListenerType::LoadBalancer => "loadbalancer",
            }
            .into(),
            bootstrap_servers: match l.kind {
                ListenerType::Internal => names.bootstrap_address(l.port),
                _ => l.advertised_addresses.join(","),
            },
            security_protocol: security_protocol(l).into(),
            sasl_mechanism: l.scram().then(|| SCRAM_MECHANISM.to_string()),
            ca_secret: l.tls.then(|| names.cluster_ca_cert_secret()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use krait_crd::cluster::{AuthorizationType, KafkaCluster};

    fn spec(listeners: serde_json::Value) -> KafkaClusterSpec {
        let c: KafkaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "main", "namespace": "kafka"},
            "spec": {"replicas": 2, "image": "krait:1", "storage": {"ephemeral": true},
                     "listeners": listeners}
        }))
        .unwrap();
        c.spec
    }

    fn keys(pairs: &[(String, String)]) -> std::collections::BTreeMap<&str, &str> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_spec_without_listeners_gets_tls_with_scram_on_9094() {
        let mut s = spec(serde_json::json!([]));
        s.listeners = None;
        let listeners = validate_listeners(&s).unwrap();
        assert_eq!(listeners, vec![GenericListener::default_secure()]);
        assert_eq!(security_protocol(&listeners[0]), "SASL_SSL");
        let k = broker_overrides(&listeners, None, "$(POD_NAME).h.kafka.svc");
        let k = keys(&k);
        assert_eq!(k["listeners"], "TLS://0.0.0.0:9094");
        assert_eq!(
            k["advertised.listeners"],
            "TLS://$(POD_NAME).h.kafka.svc:9094"
        );
        assert_eq!(k["listener.security.protocol.map"], "TLS:SASL_SSL");
        assert_eq!(
            k["listener.name.tls.sasl.enabled.mechanisms"],
            "SCRAM-SHA-512"
        );
        assert!(k["ssl.keystore.location"].ends_with("/$(POD_NAME).pem"));
        assert!(!k.contains_key("authorizer.class.name"));
        assert!(!k.contains_key("ssl.principal.mapping.rules"));
        assert!(!uses_mtls(&listeners));
    }

    #[test]
    fn a_tls_authentication_listener_requires_client_certificates_from_the_clients_ca() {
        let s = spec(serde_json::json!([
            {"name": "tls", "port": 9094, "type": "internal", "tls": true,
             "authentication": {"type": "scram-sha-512"}},
            {"name": "mtls", "port": 9095, "type": "internal", "tls": true,
             "authentication": {"type": "tls"}}]));
        let listeners = validate_listeners(&s).unwrap();
        assert!(uses_mtls(&listeners));
        assert_eq!(security_protocol(&listeners[1]), "SSL");
        let k = broker_overrides(&listeners, None, "h");
        let k = keys(&k);
        assert_eq!(k["listener.security.protocol.map"], "TLS:SASL_SSL,MTLS:SSL");
        assert_eq!(k["listener.name.mtls.ssl.client.auth"], "required");
        assert_eq!(
            k["listener.name.mtls.ssl.truststore.location"],
            "/etc/krait/cluster-tls/clients-ca.crt"
        );
        assert!(!k.contains_key("listener.name.tls.ssl.client.auth"));
        assert_eq!(k["ssl.principal.mapping.rules"], PRINCIPAL_MAPPING_RULES);
        assert_eq!(
            operator_listener(&listeners).name,
            "tls",
            "the operator logs in with SCRAM"
        );
    }

    #[test]
    fn the_plaintext_listener_alone_needs_no_kafka_keys() {
        let s = spec(serde_json::json!({"internal": {"port": 9092}}));
        let listeners = validate_listeners(&s).unwrap();
        assert!(broker_overrides(&listeners, None, "h").is_empty());
        // Another name is not the broker's default, so it is spelled out.
        let s = spec(serde_json::json!([{"name": "plain", "port": 9092, "type": "internal"}]));
        let k = broker_overrides(&validate_listeners(&s).unwrap(), None, "h");
        assert_eq!(
            keys(&k)["listener.security.protocol.map"],
            "PLAIN:PLAINTEXT"
        );
    }

    #[test]
    fn several_listeners_with_an_external_one_and_acls() {
        let mut s = spec(serde_json::json!([
            {"name": "plain", "port": 9092, "type": "internal"},
            {"name": "scram", "port": 9094, "type": "internal",
             "authentication": {"type": "scram-sha-512"}},
            {"name": "public", "port": 9095, "type": "loadbalancer", "tls": true,
             "authentication": {"type": "scram-sha-512"},
             "advertisedAddresses": ["a.example:9095", "b.example:9095"]}
        ]));
        s.authorization = Some(Authorization {
            kind: AuthorizationType::Simple,
            super_users: vec!["alice".into(), "User:krait-operator".into()],
        });
        let listeners = validate_listeners(&s).unwrap();
        assert_eq!(operator_listener(&listeners).name, "scram");
        assert_eq!(primary(&listeners).name, "plain");
        let k = broker_overrides(&listeners, s.authorization.as_ref(), "h");
        let k = keys(&k);
        assert_eq!(k["listeners"], "PLAIN://0.0.0.0:9092,SCRAM://0.0.0.0:9094");
        assert_eq!(
            k["listener.security.protocol.map"],
            "PLAIN:PLAINTEXT,SCRAM:SASL_PLAINTEXT,EXTERNAL:SASL_SSL"
        );
        assert_eq!(
            k["listener.name.external.sasl.enabled.mechanisms"],
            "SCRAM-SHA-512"
        );
        assert_eq!(k["super.users"], "User:krait-operator;User:alice");
        assert_eq!(k["authorizer.class.name"], AUTHORIZER_CLASS);
        let names = ClusterNames::new("main", "kafka");
        let status = listener_statuses(&names, &listeners);
        assert_eq!(status[0].bootstrap_servers, "main-bootstrap.kafka.svc:9092");
        assert_eq!(status[1].sasl_mechanism.as_deref(), Some("SCRAM-SHA-512"));
        assert_eq!(status[2].bootstrap_servers, "a.example:9095,b.example:9095");
        assert_eq!(status[2].ca_secret.as_deref(), Some("main-cluster-ca-cert"));
        assert_eq!(status[2].security_protocol, "SASL_SSL");
        assert_eq!(
            external_hosts(&listeners),
            BTreeMap::from([(0, "a.example".into()), (1, "b.example".into())]),
            "the brokers' certificates name their external hosts"
        );
    }

    #[test]
    fn listener_specs_that_cannot_work_are_refused_with_the_reason() {
        let refused =
            |listeners: serde_json::Value| validate_listeners(&spec(listeners)).unwrap_err();
        assert_eq!(
            refused(
                serde_json::json!([{"name": "a", "port": 9092, "type": "nodeport",
                "advertisedAddresses": ["x:1", "y:2"]}])
            ),
            InvalidSpec::NoInternalListener
        );
        assert_eq!(
            refused(
                serde_json::json!([{"name": "a", "port": 9092, "type": "internal"},
                                       {"name": "a", "port": 9095, "type": "internal"}])
            ),
            InvalidSpec::DuplicateListener("a".into())
        );
        assert_eq!(
            refused(
                serde_json::json!([{"name": "a", "port": 9092, "type": "internal"},
                                       {"name": "b", "port": 9092, "type": "internal"}])
            ),
            InvalidSpec::PortClash(9092)
        );
        assert_eq!(
            refused(serde_json::json!([{"name": "a", "port": HTTP_PORT, "type": "internal"}])),
            InvalidSpec::PortClash(HTTP_PORT)
        );
        assert_eq!(
            refused(
                serde_json::json!([{"name": "a", "port": 9092, "type": "internal"},
                {"name": "b", "port": 9095, "type": "nodeport", "advertisedAddresses": ["x:1"]}])
            ),
            InvalidSpec::AdvertisedAddressCount {
                got: 1,
                replicas: 2
            }
        );
        assert_eq!(
            refused(serde_json::json!([{"name": "Bad_Name", "port": 9092, "type": "internal"}])),
            InvalidSpec::ListenerName("Bad_Name".into())
        );
        let mut s = spec(serde_json::json!([{"name": "a", "port": 9092, "type": "internal"}]));
        s.authorization = Some(Authorization {
            kind: AuthorizationType::Simple,
            super_users: vec![],
        });
        assert_eq!(
            validate_listeners(&s).unwrap_err(),
            InvalidSpec::AuthorizationWithoutScram
        );
    }
}
