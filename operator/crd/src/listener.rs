//! `spec.listeners` and `spec.authorization` of a `KafkaCluster`: how clients reach the brokers
//! and prove who they are, in Strimzi's shape (a list of listeners, each with a type, TLS and
//! an authentication). Types, schema and the reading of the earlier object form only; what the
//! brokers are told is the operator's.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Port of the Kafka listener inside the cluster when the spec does not set one.
pub const DEFAULT_KAFKA_PORT: i32 = 9092;
/// Port of the TLS + SCRAM listener a new cluster gets when its spec names none.
pub const DEFAULT_SECURE_PORT: i32 = 9094;

/// One Kafka listener. Its name, upper-cased, is the broker's listener name (Kafka's
/// `listeners` / `listener.security.protocol.map` keys); a `nodeport` or `loadbalancer`
/// listener is the brokers' `EXTERNAL` listener.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.type == 'internal' || (has(self.advertisedAddresses) && size(self.advertisedAddresses) > 0)")
        .message("a nodeport or loadbalancer listener needs advertisedAddresses, one HOST:PORT per broker"),
    validation = Rule::new("self.type != 'internal' || ((!has(self.advertisedAddresses) || size(self.advertisedAddresses) == 0) && !has(self.nodePortBase))")
        .message("advertisedAddresses and nodePortBase apply to nodeport and loadbalancer listeners only"),
    validation = Rule::new("!has(self.authentication) || self.authentication.type != 'tls' || (has(self.tls) && self.tls)")
        .message("tls authentication (client certificates) needs tls: true")
)]
#[serde(rename_all = "camelCase")]
pub struct GenericListener {
    /// Lower-case letters and digits (at most 15, starting with a letter), unique among the
    /// listeners, e.g. `tls` or `plain`; it also names the broker pods' container port.
    /// `cluster`, `http` and `kafka` are the brokers' own ports' names.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]{0,14}$"))]
    pub name: String,

    /// Container port (and, for `internal`, Service port) of the listener.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// `internal`: reached through the cluster's Services by in-cluster clients; `nodeport` or
    /// `loadbalancer`: one Service per broker of that type, for clients outside Kubernetes.
    #[serde(rename = "type")]
    pub kind: ListenerType,

    /// Encrypt connections with TLS, the brokers presenting certificates signed by the cluster
    /// CA (`status.listeners[].caSecret` holds the certificate to trust).
    #[serde(default)]
    pub tls: bool,

    /// How clients of this listener authenticate; anonymous when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<ListenerAuthentication>,

    /// For `nodeport` and `loadbalancer`: the address each broker advertises to this
    /// listener's clients, indexed by broker id, as `HOST:PORT`; one entry per broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertised_addresses: Vec<String>,

    /// For `nodeport`: the node port of broker 0; broker N uses `nodePortBase + N`.
    /// Kubernetes allocates ports when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port_base: Option<i32>,

    /// For `nodeport` and `loadbalancer`: annotations added to each per-broker Service (e.g.
    /// for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl GenericListener {
    /// The listener a new cluster gets when its spec names none: in-cluster, TLS, SCRAM.
    pub fn default_secure() -> Self {
        Self {
            name: "tls".into(),
            port: DEFAULT_SECURE_PORT,
            kind: ListenerType::Internal,
            tls: true,
            authentication: Some(ListenerAuthentication {
                kind: AuthenticationType::ScramSha512,
            }),
            advertised_addresses: Vec::new(),
            node_port_base: None,
            annotations: BTreeMap::new(),
        }
    }

    /// An in-cluster listener without TLS or authentication.
    pub fn plaintext(name: &str, port: i32) -> Self {
        Self {
            name: name.into(),
            port,
            kind: ListenerType::Internal,
            tls: false,
            authentication: None,
            advertised_addresses: Vec::new(),
            node_port_base: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Whether clients authenticate with certificates here (mutual TLS).
    pub fn mtls(&self) -> bool {
        self.authentication
            .as_ref()
            .is_some_and(|a| a.kind == AuthenticationType::Tls)
    }

    /// Whether clients log in with SCRAM here.
    pub fn scram(&self) -> bool {
        self.authentication
            .as_ref()
            .is_some_and(|a| a.kind == AuthenticationType::ScramSha512)
    }
}

/// Where a listener's clients are.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListenerType {
    Internal,
    #[serde(rename = "nodeport")]
    NodePort,
    #[serde(rename = "loadbalancer")]
    LoadBalancer,
}

/// A listener's client authentication.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerAuthentication {
    /// `scram-sha-512`: SASL SCRAM-SHA-512 with the users' passwords (SASL_SSL with `tls`,
    /// SASL_PLAINTEXT without); `tls`: client certificates (SSL; needs `tls: true`).
    #[serde(rename = "type")]
    pub kind: AuthenticationType,
}

/// Authentication mechanisms a listener can require.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationType {
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// Mutual TLS: clients present a certificate signed by the cluster's clients CA (a
    /// `KafkaUser` with `authentication.type: tls` gets one); the principal is `User:<CN>`.
    #[serde(rename = "tls")]
    Tls,
}

/// `spec.authorization`: ACLs enforced by the brokers.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// `simple`: Kafka's StandardAuthorizer semantics (deny unless an ACL allows, deny ACLs
    /// win), with ACLs kept in the cluster's metadata.
    #[serde(rename = "type")]
    pub kind: AuthorizationType,

    /// Principals allowed everything, e.g. `User:admin`; a bare name means `User:<name>`. The
    /// operator's own user (`krait-operator`) is always one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub super_users: Vec<String>,
}

/// Authorizers the brokers can run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationType {
    Simple,
}

/// `spec.listeners` as a list, or as the object `{internal: {port}, external: {...}}` that
/// clusters made before the list kept in the API server: read as the same plaintext
/// listeners, so those clusters keep what they serve.
pub fn deserialize_listeners<'de, D>(
    deserializer: D,
) -> Result<Option<Vec<GenericListener>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<GenericListener>),
        Object(EarlierListeners),
    }
    Ok(match Option::<Form>::deserialize(deserializer)? {
        None => None,
        Some(Form::List(list)) => Some(list),
        Some(Form::Object(earlier)) => Some(earlier.into_list()),
    })
}

/// The object form of `spec.listeners` before it became a list.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EarlierListeners {
    #[serde(default)]
    internal: Option<EarlierInternal>,
    #[serde(default)]
    external: Option<EarlierExternal>,
}

#[derive(Deserialize)]
struct EarlierInternal {
    #[serde(default)]
    port: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EarlierExternal {
    #[serde(rename = "type")]
    kind: String,
    port: i32,
    #[serde(default)]
    advertised_addresses: Vec<String>,
    #[serde(default)]
    node_port_base: Option<i32>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl EarlierListeners {
    fn into_list(self) -> Vec<GenericListener> {
        let port = self
            .internal
            .and_then(|i| i.port)
            .unwrap_or(DEFAULT_KAFKA_PORT);
        let mut list = vec![GenericListener::plaintext(PLAINTEXT_NAME, port)];
        if let Some(e) = self.external {
            list.push(GenericListener {
                name: "external".into(),
                port: e.port,
                kind: if e.kind.eq_ignore_ascii_case("LoadBalancer") {
                    ListenerType::LoadBalancer
                } else {
                    ListenerType::NodePort
                },
                tls: false,
                authentication: None,
                advertised_addresses: e.advertised_addresses,
                node_port_base: e.node_port_base,
                annotations: e.annotations,
            });
        }
        list
    }
}

/// Name of the plaintext listener of clusters made before listeners were a list (the
/// broker's default listener name, so their brokers' command line does not change).
pub const PLAINTEXT_NAME: &str = "plaintext";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "deserialize_listeners")]
        listeners: Option<Vec<GenericListener>>,
    }

    fn read(json: serde_json::Value) -> Option<Vec<GenericListener>> {
        serde_json::from_value::<Holder>(json).unwrap().listeners
    }

    #[test]
    fn the_list_form_reads_as_written() {
        let got = read(serde_json::json!({"listeners": [
            {"name": "tls", "port": 9094, "type": "internal", "tls": true,
             "authentication": {"type": "scram-sha-512"}},
            {"name": "ext", "port": 9094, "type": "nodeport",
             "advertisedAddresses": ["a:1"], "nodePortBase": 30000}
        ]}))
        .unwrap();
        assert_eq!(got[0], GenericListener::default_secure());
        assert!(got[0].scram());
        assert_eq!(got[1].kind, ListenerType::NodePort);
        assert_eq!(got[1].node_port_base, Some(30000));
        assert!(read(serde_json::json!({})).is_none());
    }

    #[test]
    fn the_earlier_object_form_reads_as_the_plaintext_listeners_it_meant() {
        let got = read(serde_json::json!({"listeners": {"internal": {"port": 9095},
            "external": {"type": "LoadBalancer", "port": 9094,
                         "advertisedAddresses": ["lb:9094"], "annotations": {"a": "b"}}}}))
        .unwrap();
        assert_eq!(got[0], GenericListener::plaintext(PLAINTEXT_NAME, 9095));
        assert_eq!(got[1].kind, ListenerType::LoadBalancer);
        assert!(!got[1].tls && got[1].authentication.is_none());
        assert_eq!(got[1].advertised_addresses, vec!["lb:9094".to_string()]);
        let empty = read(serde_json::json!({"listeners": {}})).unwrap();
        assert_eq!(
            empty,
            vec![GenericListener::plaintext(PLAINTEXT_NAME, 9092)]
        );
    }
}
