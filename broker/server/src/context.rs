//! What a handler knows about a request besides its body: the broker it runs on, the version
//! and header the client sent, and the connection it came in on (peer, listener, principal).
//!
//! Every handler takes a `RequestContext`; request state never travels in task-locals or
//! globals, so authentication and authorization see the same facts the handler does.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use krait_acl::{Action, Operation, ResourceType};
use krait_image::BrokerRegistration;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_sync::MutexExt;

use crate::broker::Broker;
use crate::listeners::{Addressing, ListenerSpec};
use crate::sasl::SaslState;

/// Who sent a request, in Kafka's `Type:name` form: `User:ANONYMOUS` on a PLAINTEXT
/// listener, the mapped certificate subject on SSL with a client certificate, the SASL user
/// on SASL listeners.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    pub fn user(name: &str) -> Self {
        Self {
            kind: "User".into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

static ANONYMOUS: LazyLock<Principal> = LazyLock::new(Principal::anonymous);

/// One client connection: its peer and listener fixed when it is accepted, its principal
/// fixed once it authenticates (at the TLS handshake, or by SASL).
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    pub listener: Arc<ListenerSpec>,
    principal: OnceLock<Principal>,
    /// Where the SASL exchange stands (SASL listeners only).
    pub sasl: Mutex<SaslState>,
    /// When the SASL login ends (connections.max.reauth.ms); `None`: never.
    session_expiry: Mutex<Option<Instant>>,
}

impl Connection {
    /// A connection accepted on `listener` whose client has not authenticated.
    pub fn accepted(peer: SocketAddr, listener: Arc<ListenerSpec>) -> Self {
        Self {
            peer,
            listener,
            principal: OnceLock::new(),
            sasl: Mutex::new(SaslState::default()),
            session_expiry: Mutex::new(None),
        }
    }

    /// A connection whose principal the TLS handshake already established.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = OnceLock::from(principal);
        self
    }

    /// Who the client is: `User:ANONYMOUS` until it authenticates.
    pub fn principal(&self) -> &Principal {
        self.principal.get().unwrap_or(&ANONYMOUS)
    }

    /// Whether the client may send requests other than ApiVersions and the SASL exchange.
    pub fn authenticated(&self) -> bool {
        !self.listener.protocol.sasl() || self.principal.get().is_some()
    }

    /// Fixes the principal a SASL exchange established, for `lifetime` (none: for good). A
    /// re-authentication (KIP-368) must name the same principal, as Kafka requires; `false`
    /// when it names another, and nothing changes.
    pub fn authenticate(
        &self,
        principal: Principal,
        lifetime: Option<Duration>,
        now: Instant,
    ) -> bool {
        if let Err(other) = self.principal.set(principal)
            && self.principal.get() != Some(&other)
        {
            return false;
        }
        *self.session_expiry.lock_unpoisoned() = lifetime.map(|l| now + l);
        true
    }

    /// Whether the SASL login has run out at `now`: the client did not log in again in time.
    pub fn session_expired(&self, now: Instant) -> bool {
        self.session_expiry
            .lock_unpoisoned()
            .is_some_and(|expiry| now >= expiry)
    }
}

/// One request as its handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub broker: &'a Broker,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The header's client id; empty when the client sent none.
    pub client_id: &'a str,
    pub connection: &'a Connection,
}

impl RequestContext<'_> {
    /// The address a client of this connection should use for a registered broker.
    pub fn client_address(&self, r: &BrokerRegistration) -> (String, i32) {
        let listener = &self.connection.listener;
        let external = (listener.addressing == Addressing::External)
            .then(|| self.broker.config.external_address(r.id))
            .flatten();
        if let Some(a) = external {
            return (a.host, a.port);
        }
        match r.listeners.get(&listener.name) {
            Some(a) => (a.host.clone(), a.port),
            None => (r.kafka_host.clone(), r.kafka_port),
        }
    }

    /// This broker's own address for a client of this connection.
    pub fn own_address(&self) -> (String, i32) {
        let a = &self.connection.listener.advertised;
        (a.host.clone(), a.port)
    }

    /// The client's host as Kafka reports it in DescribeGroups: `/` and the peer's IP.
    pub fn client_host(&self) -> String {
        format!("/{}", self.connection.peer.ip())
    }

    /// Whether this connection's principal may perform `operation` on a resource: always
    /// when no authorizer is configured, else by the cluster's ACLs.
    pub fn authorized(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(config) = &self.broker.security.authorizer else {
            return true;
        };
        let principal = self.connection.principal().to_string();
        let host = self.connection.peer.ip().to_string();
        let allowed = self.broker.cluster.image().acls.authorize(
            config,
            &Action {
                principal: &principal,
                host: &host,
                operation,
                resource_type,
                resource_name: name,
            },
        );
        if !allowed {
            tracing::debug!(%principal, %host, ?operation, ?resource_type, resource = name, "denied");
        }
        allowed
    }

    /// Kafka's authorized-operations bit field of a resource (bit n for operation code n): the
    /// operations Kafka supports on its type that this principal may perform; all of them
    /// without an authorizer, as Kafka answers.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|op| self.authorized(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Kafka's rule for creating a topic: CREATE on the cluster or on the topic.
    pub fn may_create_topic(&self, name: &str) -> bool {
        self.authorized_on_cluster(Operation::Create)
            || self.authorized(Operation::Create, ResourceType::Topic, name)
    }

    /// Why a group request cannot be served here: the principal may not `operation` the
    /// group (GROUP_AUTHORIZATION_FAILED), or this broker is not its coordinator.
    pub fn group_refusal(&self, group: &str, operation: Operation) -> Option<ResponseError> {
        if !self.authorized(operation, ResourceType::Group, group) {
            return Some(ResponseError::GroupAuthorizationFailed);
        }
        self.broker.not_coordinator()
    }

    /// `authorized` for the cluster resource.
    pub fn authorized_on_cluster(&self, operation: Operation) -> bool {
        self.authorized(operation, ResourceType::Cluster, CLUSTER_RESOURCE)
    }
}

/// The name of Kafka's one cluster resource.
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";
