//! The Kafka listeners a broker serves and how each one secures its connections, resolved
//! once at start from the flags and Kafka's own keys (`listeners`, `advertised.listeners`,
//! `listener.security.protocol.map`, `ssl.*`, `sasl.enabled.mechanisms`, and their
//! `listener.name.<name>.` overrides). Pure: binding and accepting are `server`'s and `net`'s.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use krait_auth::scram::ScramMechanism;
use krait_tls::{ClientAuth, KeyStore, ServerTlsSettings};

use crate::config::Advertised;

/// Kafka's `security.protocol` of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        })
    }
}

/// A SASL mechanism a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMechanism {
    Scram(ScramMechanism),
    Plain,
}

impl SaslMechanism {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "PLAIN" => Some(Self::Plain),
            other => ScramMechanism::from_name(other).map(Self::Scram),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Scram(m) => m.name(),
            Self::Plain => "PLAIN",
        }
    }
}

/// Which address of each broker a listener's clients are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// The address each broker registered for this listener's name (its primary address when
    /// it registered none).
    Registered,
    /// `--external-advertised-addresses`, by broker id.
    External,
}

/// One listener, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Upper-case, as Kafka normalizes listener names.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// What clients of this listener are told for this broker.
    pub advertised: Advertised,
    pub addressing: Addressing,
    pub tls: Option<ServerTlsSettings>,
    /// Offered in this order on a SASL listener; empty on others.
    pub sasl_mechanisms: Vec<SaslMechanism>,
}

/// A listener setting that cannot work, with what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenerError {
    #[error("listeners entry {0:?} is not NAME://HOST:PORT")]
    BadListener(String),
    #[error("advertised.listeners entry {0:?} is not NAME://HOST:PORT")]
    BadAdvertisedListener(String),
    #[error("listener {0} is listed twice")]
    Duplicate(String),
    #[error("cannot resolve listener host {host:?}: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error(
        "listener {0} has no security protocol: name it after one (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or map it in listener.security.protocol.map"
    )]
    NoProtocol(String),
    #[error("listener.security.protocol.map entry {0:?} is not NAME:PROTOCOL")]
    BadProtocolMap(String),
    #[error("listener {0} binds every interface; give it an entry in advertised.listeners")]
    AdvertiseRequired(String),
    #[error("inter.broker.listener.name {0} is not one of the listeners")]
    UnknownPrimary(String),
    #[error("listener {listener} uses {protocol} but {key} is not set")]
    MissingSetting {
        listener: String,
        protocol: SecurityProtocol,
        key: String,
    },
    #[error("listener {listener}: {key}={value:?} is not supported ({reason})")]
    Unsupported {
        listener: String,
        key: String,
        value: String,
        reason: String,
    },
}

/// One `NAME://HOST:PORT` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Parses a `listeners` / `advertised.listeners` value.
pub fn parse_endpoints(value: &str) -> Option<Vec<Endpoint>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (name, address) = entry.split_once("://")?;
            let (host, port) = address.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (!name.is_empty()).then_some(())?;
            Some(Endpoint {
                name: name.to_ascii_uppercase(),
                host: host.to_string(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

impl Endpoint {
    /// The socket address to bind: an empty host binds every interface, as in Kafka.
    pub fn bind_address(&self) -> Result<SocketAddr, ListenerError> {
        if self.host.is_empty() {
            return Ok(SocketAddr::from(([0, 0, 0, 0], self.port)));
        }
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| ListenerError::Unresolvable {
                host: self.host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| ListenerError::Unresolvable {
                host: self.host.clone(),
                reason: "no address".into(),
            })
    }
}

/// The Kafka keys of the configuration file, read per listener: `listener.name.<name>.<key>`
/// first, then `<key>`.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub properties: &'a BTreeMap<String, String>,
}

impl<'a> Settings<'a> {
    pub fn get(&self, listener: &str, key: &str) -> Option<&'a str> {
        let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.properties
            .get(&scoped)
            .or_else(|| self.properties.get(key))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `listener.security.protocol.map`, with each protocol's own name mapped to itself.
    pub fn protocol_of(&self, listener: &str) -> Result<SecurityProtocol, ListenerError> {
        if let Some(map) = self.properties.get("listener.security.protocol.map") {
            for entry in map.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (name, protocol) = entry
                    .split_once(':')
                    .ok_or_else(|| ListenerError::BadProtocolMap(entry.into()))?;
                let protocol = SecurityProtocol::parse(protocol)
                    .ok_or_else(|| ListenerError::BadProtocolMap(entry.into()))?;
                if name.trim().eq_ignore_ascii_case(listener) {
                    return Ok(protocol);
                }
            }
        }
        SecurityProtocol::parse(listener).ok_or_else(|| ListenerError::NoProtocol(listener.into()))
    }

    /// Completes a listener with its protocol, TLS and SASL settings.
    pub fn secure(
        &self,
        name: &str,
        bind: SocketAddr,
        advertised: Advertised,
        addressing: Addressing,
    ) -> Result<ListenerSpec, ListenerError> {
        let protocol = self.protocol_of(name)?;
        let tls = protocol
            .tls()
            .then(|| self.tls(name, protocol))
            .transpose()?;
        let sasl_mechanisms = if protocol.sasl() {
            self.sasl_mechanisms(name)?
        } else {
            Vec::new()
        };
        Ok(ListenerSpec {
            name: name.to_string(),
            protocol,
            bind,
            advertised,
            addressing,
            tls,
            sasl_mechanisms,
        })
    }

    fn tls(
        &self,
        name: &str,
        protocol: SecurityProtocol,
    ) -> Result<ServerTlsSettings, ListenerError> {
        let unsupported = |key: &str, value: &str, reason: &str| ListenerError::Unsupported {
            listener: name.into(),
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        };
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some(t) = self
                .get(name, key)
                .filter(|t| !t.eq_ignore_ascii_case("PEM"))
            {
                return Err(unsupported(key, t, "Krait reads PEM files only"));
            }
        }
        let keystore = match (
            self.get(name, "ssl.keystore.location"),
            self.get(name, "ssl.keystore.key"),
            self.get(name, "ssl.keystore.certificate.chain"),
        ) {
            (Some(path), _, _) => KeyStore::File(PathBuf::from(path)),
            (None, Some(key), Some(chain)) => KeyStore::Inline {
                key_pem: pem_lines(key),
                chain_pem: pem_lines(chain),
            },
            _ => {
                return Err(ListenerError::MissingSetting {
                    listener: name.into(),
                    protocol,
                    key: "ssl.keystore.location (or ssl.keystore.key with ssl.keystore.certificate.chain)".into(),
                });
            }
        };
        // Kafka's default is "none" for SSL listeners; SASL_SSL listeners authenticate by SASL.
        let client_auth = match self.get(name, "ssl.client.auth") {
            Some(v) => ClientAuth::parse(v)
                .map_err(|e| unsupported("ssl.client.auth", v, &e.to_string()))?,
            None => ClientAuth::None,
        };
        let truststore = self.get(name, "ssl.truststore.location").map(PathBuf::from);
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(ListenerError::MissingSetting {
                listener: name.into(),
                protocol,
                key: "ssl.truststore.location (ssl.client.auth needs the CA to check client certificates with)".into(),
            });
        }
        Ok(ServerTlsSettings {
            keystore,
            truststore,
            client_auth,
        })
    }

    /// Kafka's default is GSSAPI, which Krait does not offer; without the key a SASL listener
    /// offers both SCRAM mechanisms (PLAIN sends the password itself, so it is opt-in).
    fn sasl_mechanisms(&self, name: &str) -> Result<Vec<SaslMechanism>, ListenerError> {
        let Some(value) = self.get(name, "sasl.enabled.mechanisms") else {
            return Ok(ScramMechanism::ALL
                .into_iter()
                .map(SaslMechanism::Scram)
                .collect());
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                SaslMechanism::parse(m).ok_or_else(|| ListenerError::Unsupported {
                    listener: name.into(),
                    key: "sasl.enabled.mechanisms".into(),
                    value: m.into(),
                    reason: "Krait offers SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN".into(),
                })
            })
            .collect()
    }
}

/// PEM text as a properties file may hold it: on one line when written with `\`
/// continuations (which drop the line breaks), as Kafka accepts. Puts each BEGIN and END marker
/// and the base64 between them back on lines of their own; text with line breaks is kept.
fn pem_lines(value: &str) -> String {
    if value.contains('\n') {
        return value.to_string();
    }
    let mut out = String::new();
    let mut rest = value.trim();
    while let Some(begin) = rest.find("-----BEGIN ") {
        let Some(marker_end) = rest[begin + 11..].find("-----").map(|i| begin + 11 + i + 5) else {
            break;
        };
        let label = &rest[begin + 11..marker_end - 5];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[marker_end..].find(&end_marker).map(|i| marker_end + i) else {
            break;
        };
        let body: String = rest[marker_end..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &rest[end + end_marker.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn local() -> (SocketAddr, Advertised) {
        (
            "127.0.0.1:9093".parse().unwrap(),
            Advertised {
                host: "127.0.0.1".into(),
                port: 9093,
            },
        )
    }

    #[test]
    fn endpoints_parse_with_empty_hosts_and_ipv6() {
        let e = parse_endpoints(
            "plaintext://:9092, SASL_SSL://[::1]:9093,CLIENT://broker-0.krait:9094",
        )
        .unwrap();
        assert_eq!(e[0].name, "PLAINTEXT");
        assert_eq!(e[0].bind_address().unwrap().to_string(), "0.0.0.0:9092");
        assert_eq!(e[1].host, "::1");
        assert_eq!(e[2].name, "CLIENT");
        assert!(parse_endpoints("PLAINTEXT:9092").is_none());
        assert!(parse_endpoints("PLAINTEXT://h:port").is_none());
    }

    #[test]
    fn a_listener_named_after_a_protocol_needs_no_map_entry_and_others_do() {
        let p = props(&[(
            "listener.security.protocol.map",
            "CLIENT:SASL_SSL,REPLICATION:SSL",
        )]);
        let s = Settings { properties: &p };
        assert_eq!(s.protocol_of("SSL").unwrap(), SecurityProtocol::Ssl);
        assert_eq!(s.protocol_of("CLIENT").unwrap(), SecurityProtocol::SaslSsl);
        assert!(matches!(
            s.protocol_of("OTHER"),
            Err(ListenerError::NoProtocol(_))
        ));
    }

    #[test]
    fn per_listener_keys_override_the_global_ones() {
        let p = props(&[
            (
                "listener.security.protocol.map",
                "CLIENT:SASL_PLAINTEXT,ADMIN:SASL_PLAINTEXT",
            ),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            (
                "listener.name.admin.sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256",
            ),
        ]);
        let s = Settings { properties: &p };
        let (bind, adv) = local();
        let client = s
            .secure("CLIENT", bind, adv.clone(), Addressing::Registered)
            .unwrap();
        assert_eq!(
            client.sasl_mechanisms,
            vec![SaslMechanism::Scram(ScramMechanism::Sha512)]
        );
        let admin = s
            .secure("ADMIN", bind, adv, Addressing::Registered)
            .unwrap();
        assert_eq!(
            admin.sasl_mechanisms,
            vec![
                SaslMechanism::Plain,
                SaslMechanism::Scram(ScramMechanism::Sha256)
            ]
        );
        assert!(admin.tls.is_none());
    }

    #[test]
    fn tls_listeners_need_a_keystore_and_client_auth_needs_a_truststore() {
        let (bind, adv) = local();
        let none = props(&[]);
        let err = Settings { properties: &none }
            .secure("SSL", bind, adv.clone(), Addressing::Registered)
            .unwrap_err();
        assert!(err.to_string().contains("ssl.keystore.location"), "{err}");
        let p = props(&[
            ("ssl.keystore.location", "/etc/krait/broker.pem"),
            ("ssl.client.auth", "required"),
        ]);
        let err = Settings { properties: &p }
            .secure("SSL", bind, adv.clone(), Addressing::Registered)
            .unwrap_err();
        assert!(err.to_string().contains("ssl.truststore.location"), "{err}");
        let p = props(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/etc/krait/broker.pem"),
            ("ssl.truststore.location", "/etc/krait/ca.pem"),
            ("ssl.client.auth", "requested"),
        ]);
        let spec = Settings { properties: &p }
            .secure("SSL", bind, adv.clone(), Addressing::Registered)
            .unwrap();
        let tls = spec.tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Requested);
        assert_eq!(tls.keystore, KeyStore::File("/etc/krait/broker.pem".into()));
        let jks = props(&[
            ("ssl.keystore.type", "JKS"),
            ("ssl.keystore.location", "k.jks"),
        ]);
        let err = Settings { properties: &jks }
            .secure("SSL", bind, adv, Addressing::Registered)
            .unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");
    }

    #[test]
    fn inline_pem_written_on_one_line_gets_its_line_breaks_back() {
        let one_line = "-----BEGIN PRIVATE KEY----- MIGHAgEAMBMG ByqGSM49 -----END PRIVATE KEY----- -----BEGIN CERTIFICATE----- QUJD -----END CERTIFICATE-----";
        assert_eq!(
            pem_lines(one_line),
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
        );
        let multi = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_lines(multi), multi);
    }

    #[test]
    fn unknown_sasl_mechanisms_are_refused_by_name() {
        let (bind, adv) = local();
        let p = props(&[("sasl.enabled.mechanisms", "GSSAPI")]);
        let err = Settings { properties: &p }
            .secure("SASL_PLAINTEXT", bind, adv, Addressing::Registered)
            .unwrap_err();
        assert!(err.to_string().contains("GSSAPI"), "{err}");
    }
}
