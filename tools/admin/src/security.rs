//! How a connection proves who it talks to and who it is: the security settings of one
//! client (`Security`: TLS through `krait-tls`, SASL PLAIN or SCRAM through `krait-auth`),
//! the byte stream under a `Connection` (plain TCP or rustls over TCP), and the SASL exchange
//! (SaslHandshake v1, then SaslAuthenticate) that follows ApiVersions.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use krait_auth::scram::{ScramClient, ScramMechanism};
use krait_tls::ClientTlsSettings;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::wire::{Connection, WireError, error_text};

/// A SASL mechanism a client can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// The name Kafka and librdkafka use: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    /// The mechanism for a name, ignoring ASCII case; `None` for one this client lacks
    /// (GSSAPI, OAUTHBEARER).
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        match upper.as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            other => ScramMechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }
}

/// A user name and password for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

/// Written by hand so the password never reaches a log.
impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What a client does on top of TCP: TLS when `tls` is set, SASL when `sasl` is set; both is
/// SASL_SSL. The default is PLAINTEXT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub tls: Option<ClientTlsSettings>,
    pub sasl: Option<SaslCredentials>,
}

impl Security {
    /// Kafka's `security.protocol` for these settings.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// The bytes under a connection: TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The host part of `HOST:PORT` (brackets of an IPv6 literal removed), the name TLS checks.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Wraps `tcp` in TLS when `security` asks for it and completes the handshake, so a refused
/// certificate is reported as such rather than as a failed first request.
pub(crate) fn secure_stream(
    address: &str,
    tcp: TcpStream,
    security: &Security,
) -> Result<Stream, WireError> {
    let Some(settings) = &security.tls else {
        return Ok(Stream::Plain(tcp));
    };
    let tls_error = |detail: String| WireError::Tls {
        address: address.to_string(),
        detail,
    };
    let config = krait_tls::client_config(settings).map_err(|e| tls_error(e.to_string()))?;
    let name = ServerName::try_from(host_of(address).to_string()).map_err(|e| {
        tls_error(format!(
            "{:?} is not a TLS server name: {e}",
            host_of(address)
        ))
    })?;
    let connection = ClientConnection::new(config, name).map_err(|e| tls_error(e.to_string()))?;
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| tls_error(format!("TLS handshake failed: {e}")))?;
    }
    Ok(Stream::Tls(Box::new(stream)))
}

/// SaslHandshake v1 is the first version whose mechanism messages travel in
/// SaslAuthenticate requests (v0 sent raw tokens, which Krait does not serve).
const SASL_HANDSHAKE_VERSIONS: std::ops::RangeInclusive<i16> = 1..=1;
const SASL_AUTHENTICATE_VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

impl Connection {
    /// Logs in with `credentials`: SaslHandshake names the mechanism, then one
    /// SaslAuthenticate round (PLAIN) or two (SCRAM, whose server proof is checked too).
    pub(crate) fn authenticate(&mut self, credentials: &SaslCredentials) -> Result<(), WireError> {
        let mechanism = credentials.mechanism;
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name()));
        let answer = self.call(&handshake, SASL_HANDSHAKE_VERSIONS)?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(self.auth_error(
                mechanism,
                format!(
                    "{}; the listener offers {}",
                    error_text(answer.error_code, None),
                    offered.join(", ")
                ),
            ));
        }
        match mechanism {
            SaslMechanism::Plain => {
                let mut token = vec![0u8];
                token.extend_from_slice(credentials.username.as_bytes());
                token.push(0);
                token.extend_from_slice(credentials.password.as_bytes());
                self.sasl_round(mechanism, token)?;
            }
            SaslMechanism::Scram(scram) => {
                let mut client = ScramClient::new(
                    scram,
                    &credentials.username,
                    credentials.password.as_bytes(),
                );
                let server_first = self.sasl_round(mechanism, client.first_message())?;
                let client_final = client
                    .final_message(&server_first)
                    .map_err(|e| self.auth_error(mechanism, e.to_string()))?;
                let server_final = self.sasl_round(mechanism, client_final)?;
                client
                    .verify_server_final(&server_final)
                    .map_err(|e| self.auth_error(mechanism, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate request; the server's bytes, or its refusal as an error.
    fn sasl_round(&mut self, mechanism: SaslMechanism, token: Vec<u8>) -> Result<Bytes, WireError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let answer = self.call(&request, SASL_AUTHENTICATE_VERSIONS)?;
        if answer.error_code != 0 {
            return Err(self.auth_error(
                mechanism,
                error_text(answer.error_code, answer.error_message.as_ref()),
            ));
        }
        Ok(answer.auth_bytes)
    }

    fn auth_error(&self, mechanism: SaslMechanism, detail: String) -> WireError {
        WireError::Authentication {
            address: self.address().to_string(),
            mechanism: mechanism.name(),
            detail,
        }
    }
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
