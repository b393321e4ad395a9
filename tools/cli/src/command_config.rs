//! `--command-config FILE`: a Kafka client properties file, as `kafka-topics.sh
//! --command-config` takes it, with Java's key names or librdkafka's. It becomes two things:
//! the librdkafka settings of the produce/consume/topic/group/perf clients (Java names
//! translated to librdkafka's, every other key passed through for librdkafka to accept or
//! name as unknown), and the `krait_admin::Security` of the admin-protocol session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use krait_admin::{SaslCredentials, SaslMechanism, Security};
use krait_properties::PropertiesError;
use krait_tls::{ClientTlsSettings, KeyStore};

use crate::jaas::{JaasError, parse_login};

/// Why a command config cannot be used; each names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum CommandConfigError {
    #[error("cannot read command config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("command config {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: PropertiesError,
    },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("sasl.jaas.config: {0}")]
    Jaas(#[from] JaasError),
}

fn invalid(key: &str, reason: impl Into<String>) -> CommandConfigError {
    CommandConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The settings a command config gives every client of one `krait` run.
#[derive(Clone, Default)]
pub struct CommandConfig {
    /// librdkafka's keys and values, applied after the CLI's own settings.
    pub librdkafka: BTreeMap<String, String>,
    /// TLS and SASL of krait-admin connections.
    pub security: Security,
}

/// Written by hand so passwords and keys never reach a log: librdkafka's keys only.
impl std::fmt::Debug for CommandConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandConfig")
            .field(
                "librdkafka_keys",
                &self.librdkafka.keys().collect::<Vec<_>>(),
            )
            .field("security", &self.security)
            .finish()
    }
}

/// Reads and translates `path`.
pub fn load(path: &Path) -> Result<CommandConfig, CommandConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| CommandConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let props = krait_properties::parse(&text).map_err(|source| CommandConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    from_properties(&props)
}

/// Translates parsed properties; reads a file only for a librdkafka-style certificate and key
/// in two files (krait-admin takes them as one key store).
pub fn from_properties(
    props: &BTreeMap<String, String>,
) -> Result<CommandConfig, CommandConfigError> {
    let librdkafka = to_librdkafka(props)?;
    let security = security(&librdkafka)?;
    Ok(CommandConfig {
        librdkafka,
        security,
    })
}

/// Java keys with a librdkafka key of another name and the same value.
const RENAMED: &[(&str, &str)] = &[
    ("sasl.mechanism", "sasl.mechanisms"),
    ("ssl.truststore.location", "ssl.ca.location"),
    ("ssl.truststore.certificates", "ssl.ca.pem"),
    ("ssl.keystore.key", "ssl.key.pem"),
    ("ssl.keystore.certificate.chain", "ssl.certificate.pem"),
];

/// Java keys of JKS and PKCS#12 stores, which have no librdkafka equivalent here.
const STORE_PASSWORDS: &[&str] = &["ssl.truststore.password", "ssl.keystore.password"];

/// Every key in librdkafka's names: Java's translated, the rest as given. The bootstrap
/// servers are left out: `--bootstrap-server` names them.
pub fn to_librdkafka(
    props: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, CommandConfigError> {
    let mut out = BTreeMap::new();
    for (key, value) in props {
        let key = key.as_str();
        if let Some((_, to)) = RENAMED.iter().find(|(from, _)| *from == key) {
            out.insert(to.to_string(), value.clone());
            continue;
        }
        match key {
            "bootstrap.servers" => {}
            "security.protocol" => {
                out.insert(key.into(), protocol(value)?.to_ascii_lowercase());
            }
            "ssl.truststore.type" | "ssl.keystore.type" => {
                if !value.trim().eq_ignore_ascii_case("PEM") {
                    return Err(invalid(
                        key,
                        format!("{value} stores are not read; use PEM"),
                    ));
                }
            }
            k if STORE_PASSWORDS.contains(&k) => {
                return Err(invalid(key, "PEM stores have no store password; remove it"));
            }
            "ssl.keystore.location" => {
                // One PEM file with the key and the chain serves as both: OpenSSL skips the
                // blocks of the other kind.
                out.insert("ssl.certificate.location".into(), value.clone());
                out.insert("ssl.key.location".into(), value.clone());
            }
            "ssl.endpoint.identification.algorithm" => {
                let v = ClientTlsSettings::endpoint_identification(value)
                    .map(|check| if check { "https" } else { "none" })
                    .or_else(|_| match value.trim() {
                        "none" => Ok("none"),
                        _ => Err(invalid(
                            key,
                            format!("expected https or empty, got {value:?}"),
                        )),
                    })?;
                out.insert(key.into(), v.into());
            }
            "sasl.jaas.config" => {
                let login = parse_login(value)?;
                out.insert("sasl.username".into(), login.username);
                out.insert("sasl.password".into(), login.password);
            }
            _ => {
                out.insert(key.into(), value.clone());
            }
        }
    }
    Ok(out)
}

/// Kafka's `security.protocol`, checked, upper-case.
fn protocol(value: &str) -> Result<String, CommandConfigError> {
    let upper = value.trim().to_ascii_uppercase();
    match upper.as_str() {
        "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => Ok(upper),
        _ => Err(invalid(
            "security.protocol",
            format!("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {value:?}"),
        )),
    }
}

/// krait-admin's settings from the librdkafka-named ones.
fn security(rd: &BTreeMap<String, String>) -> Result<Security, CommandConfigError> {
    let protocol = match rd.get("security.protocol") {
        Some(p) => protocol(p)?,
        None => "PLAINTEXT".to_string(),
    };
    let tls = match protocol.as_str() {
        "SSL" | "SASL_SSL" => Some(tls(rd)?),
        _ => None,
    };
    let sasl = match protocol.as_str() {
        "SASL_PLAINTEXT" | "SASL_SSL" => Some(sasl(rd)?),
        _ => None,
    };
    Ok(Security { tls, sasl })
}

fn tls(rd: &BTreeMap<String, String>) -> Result<ClientTlsSettings, CommandConfigError> {
    let verify_hostname = rd
        .get("ssl.endpoint.identification.algorithm")
        .is_none_or(|v| v == "https");
    Ok(ClientTlsSettings {
        truststore: rd.get("ssl.ca.location").map(PathBuf::from),
        truststore_pem: rd.get("ssl.ca.pem").cloned(),
        keystore: keystore(rd)?,
        verify_hostname,
    })
}

fn keystore(rd: &BTreeMap<String, String>) -> Result<Option<KeyStore>, CommandConfigError> {
    let read = |key: &str, path: &str| {
        std::fs::read_to_string(path).map_err(|e| invalid(key, format!("cannot read {path}: {e}")))
    };
    let cert = rd.get("ssl.certificate.location");
    let key = rd.get("ssl.key.location");
    let store = match (
        cert,
        key,
        rd.get("ssl.certificate.pem"),
        rd.get("ssl.key.pem"),
    ) {
        (Some(c), Some(k), _, _) if c == k => Some(KeyStore::File(PathBuf::from(c))),
        (Some(c), Some(k), _, _) => Some(KeyStore::Inline {
            key_pem: read("ssl.key.location", k)?,
            chain_pem: read("ssl.certificate.location", c)?,
        }),
        (None, None, Some(chain), Some(key)) => Some(KeyStore::Inline {
            key_pem: key.clone(),
            chain_pem: chain.clone(),
        }),
        (None, None, None, None) => None,
        _ => {
            return Err(invalid(
                "ssl.keystore.location",
                "a client certificate needs both its key and its certificate chain",
            ));
        }
    };
    Ok(store)
}

fn sasl(rd: &BTreeMap<String, String>) -> Result<SaslCredentials, CommandConfigError> {
    let name = rd.get("sasl.mechanisms").ok_or_else(|| {
        invalid(
            "sasl.mechanism",
            "SASL needs a mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        )
    })?;
    let mechanism = SaslMechanism::from_name(name).ok_or_else(|| {
        invalid(
            "sasl.mechanism",
            format!("{name} is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
        )
    })?;
    let missing = |what: &str| {
        invalid(
            "sasl.jaas.config",
            format!("SASL needs a {what}: sasl.jaas.config, or sasl.username and sasl.password"),
        )
    };
    Ok(SaslCredentials {
        mechanism,
        username: rd
            .get("sasl.username")
            .cloned()
            .ok_or_else(|| missing("user name"))?,
        password: rd
            .get("sasl.password")
            .cloned()
            .ok_or_else(|| missing("password"))?,
    })
}

#[cfg(test)]
#[path = "command_config_tests.rs"]
mod tests;
