//! Where a connection's SASL exchange stands, between SaslHandshake and the last
//! SaslAuthenticate. The mechanisms themselves are krait-auth's; the handlers drive them.

use krait_auth::scram::ScramServer;

use crate::listeners::SaslMechanism;

/// A connection's SASL progress (Kafka's SaslServerAuthenticator states, for the v1 flow:
/// every token travels in a SaslAuthenticate request).
#[derive(Debug, Default)]
pub enum SaslState {
    /// Nothing yet: a SaslHandshake comes next.
    #[default]
    Handshake,
    /// A mechanism was chosen; its first token comes next.
    Chosen(SaslMechanism),
    /// A SCRAM exchange waits for the client's final message.
    Scram(SaslMechanism, Box<ScramServer>),
    /// Logged in with this mechanism: a SaslHandshake for the same one may start a
    /// re-authentication (KIP-368).
    Authenticated(SaslMechanism),
    /// Failed: the connection closes.
    Done,
}
