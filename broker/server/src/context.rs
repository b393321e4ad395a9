//! What a handler knows about a request besides its body: the broker it runs on, the version
//! and header the client sent, and the connection it came in on (peer, listener, principal).
//!
//! Every handler takes a `RequestContext`; request state never travels in task-locals or
//! globals, so authentication and authorization see the same facts the handler does.

use std::fmt;
use std::net::SocketAddr;

use crate::broker::Broker;

/// Which Kafka listener a connection came in on: it decides which address of each broker the
/// client is told (Metadata, DescribeCluster, FindCoordinator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `--listen`: addresses from `--advertise`, as each broker registered them.
    Internal,
    /// `--external-listen`: addresses from `--external-advertised-addresses`, by broker id.
    External,
}

/// Who sent a request, in Kafka's `Type:name` form. Until a listener authenticates its
/// clients, every connection is `User:ANONYMOUS`, as on a Kafka PLAINTEXT listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self {
            kind: "User".into(),
            name: "ANONYMOUS".into(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// One client connection: fixed when it is accepted (and, later, when it authenticates).
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub listener: Listener,
    pub principal: Principal,
}

impl Connection {
    /// A connection accepted on `listener` whose client has not authenticated.
    pub fn accepted(peer: SocketAddr, listener: Listener) -> Self {
        Self {
            peer,
            listener,
            principal: Principal::anonymous(),
        }
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
    /// The address a client of this connection should use for broker `id`, whose internal
    /// advertised address is `host:port`.
    pub fn client_address(&self, id: i32, host: String, port: i32) -> (String, i32) {
        if self.connection.listener == Listener::Internal {
            return (host, port);
        }
        self.broker
            .config
            .external_address(id)
            .map_or((host, port), |a| (a.host, a.port))
    }

    /// The client's host as Kafka reports it in DescribeGroups: `/` and the peer's IP.
    pub fn client_host(&self) -> String {
        format!("/{}", self.connection.peer.ip())
    }
}
