//! Who a client is: the server side of the SASL mechanisms Kafka clients speak (SCRAM-SHA-256,
//! SCRAM-SHA-512, PLAIN) over one store of salted SCRAM credentials, and the principal a TLS
//! client certificate names. Pure: no sockets, no storage; the server keeps the credentials in
//! the replicated metadata and drives these exchanges from SaslAuthenticate.

pub mod plain;
pub mod principal;
pub mod scram;
