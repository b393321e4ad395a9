//! `krait-broker --config server.properties`: the broker reads Kafka's own key names, and the
//! flags and `KRAIT_*` variables keep working and win over the file. The file's values become
//! the flags' defaults, so clap's own precedence (command line, then environment, then default)
//! is the precedence, and a bad value is reported with the flag it feeds.
//!
//! Also here: the listeners and the security settings derived from the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};
use krait_acl::AuthorizerConfig;
use krait_auth::principal::PrincipalMapper;
use krait_auth::scram::ScramMechanism;
use krait_properties as properties;

use crate::config::{Advertised, BrokerConfig, ConfigError};
use crate::listeners::{Addressing, ListenerError, ListenerSpec, Settings, parse_endpoints};

/// Kafka keys that set a flag, and the flag's argument id.
const KAFKA_KEYS: &[(&str, &str)] = &[
    ("node.id", "node_id"),
    ("broker.id", "node_id"),
    ("auto.create.topics.enable", "auto_create_topics"),
    ("num.partitions", "default_partitions"),
    ("socket.request.max.bytes", "max_request_bytes"),
    ("message.max.bytes", "max_message_bytes"),
    ("cluster.ssl.keystore.location", "cluster_tls_keystore"),
    ("cluster.ssl.truststore.location", "cluster_tls_truststore"),
    ("memory.mb", "memory_mb"),
    ("storage.memory.mb", "storage_memory_mb"),
    ("storage.reclaim.min.mb", "storage_reclaim_min_mb"),
    ("max.connections", "max_connections"),
    ("max.connections.per.ip", "max_connections_per_ip"),
    ("connections.max.idle.ms", "connections_max_idle_ms"),
    ("connections.max.reauth.ms", "connections_max_reauth_ms"),
    ("queued.max.request.bytes", "queued_max_request_bytes"),
    ("max.partitions", "max_partitions"),
    ("fetch.max.bytes", "fetch_max_bytes"),
    ("fetch.memory.max.bytes", "fetch_memory_max_bytes"),
    (
        "replica.fetch.response.max.bytes",
        "replica_fetch_response_max_bytes",
    ),
    ("offset.metadata.max.bytes", "offset_metadata_max_bytes"),
    ("log.retention.bytes", "retention_bytes"),
    (
        "log.retention.check.interval.ms",
        "retention_check_interval_ms",
    ),
    (
        "log.cleaner.io.max.bytes.per.second",
        "log_cleaner_io_max_bytes_per_second",
    ),
    ("log.cleaner.backoff.ms", "log_cleaner_backoff_ms"),
    (
        "group.initial.rebalance.delay.ms",
        "group_initial_rebalance_delay_ms",
    ),
    (
        "group.min.session.timeout.ms",
        "group_min_session_timeout_ms",
    ),
    (
        "group.max.session.timeout.ms",
        "group_max_session_timeout_ms",
    ),
    ("offsets.retention.minutes", "offsets_retention_minutes"),
    ("transaction.max.timeout.ms", "transaction_max_timeout_ms"),
    (
        "transactional.id.expiration.ms",
        "transactional_id_expiration_ms",
    ),
    ("broker.rack", "rack"),
    ("replica.selector.class", "replica_selector"),
    (
        "broker.heartbeat.interval.ms",
        "broker_heartbeat_interval_ms",
    ),
    ("broker.session.timeout.ms", "broker_session_timeout_ms"),
    ("replica.lag.time.max.ms", "replica_lag_time_max_ms"),
    ("min.insync.replicas", "min_insync_replicas"),
    ("default.replication.factor", "default_replication_factor"),
];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read --config {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("--override {0:?} is not KEY=VALUE")]
    Override(String),
    #[error("cannot read --rack-file {path}: {reason}")]
    RackFile { path: PathBuf, reason: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Args(#[from] clap::Error),
}

impl LoadError {
    /// Prints the error the way clap does (help and version are not failures) and exits.
    pub fn exit(self) -> ! {
        match self {
            LoadError::Args(e) => e.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

impl BrokerConfig {
    /// Parses the process's arguments and environment, and the `--config` file if any.
    pub fn load() -> Self {
        Self::load_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the program name first) over the `--config` file they name, then reads
    /// the `--rack-file` they name.
    pub fn load_from<I, T>(args: I) -> Result<Self, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut config = Self::parse_over_file(args)?;
        if let Some(path) = &config.rack_file {
            config.rack = Some(read_rack_file(path)?);
        }
        Ok(config)
    }

    fn parse_over_file<I, T>(args: I) -> Result<Self, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let found = Self::command()
            .ignore_errors(true)
            .get_matches_from(args.clone());
        let path = found.get_one::<PathBuf>("config").cloned();
        let overrides: Vec<String> = found
            .get_many::<String>("overrides")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        if path.is_none() && overrides.is_empty() {
            return Ok(Self::from_arg_matches(
                &Self::command().try_get_matches_from(args)?,
            )?);
        }
        let mut props = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| LoadError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                properties::parse(&text).map_err(|e| LoadError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            None => BTreeMap::new(),
        };
        for entry in &overrides {
            let (key, value) = entry
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| LoadError::Override(entry.clone()))?;
            props.insert(key.trim().to_string(), value.trim().to_string());
        }
        let mut command = Self::command();
        for (id, value) in flag_defaults(&props)? {
            // clap keeps defaults for the life of the process; this runs once at start.
            let value: &'static str = Box::leak(value.into_boxed_str());
            command = command.mut_arg(id, |a| a.default_value(value));
        }
        let mut config = Self::from_arg_matches(&command.try_get_matches_from(args)?)?;
        config.properties = props;
        Ok(config)
    }

    /// Every Kafka listener this broker serves, the first one the primary (what it registers
    /// as its address and what `--listen` / `--advertise` set).
    pub fn listeners(&self, primary: &Advertised) -> Result<Vec<ListenerSpec>, ConfigError> {
        let settings = Settings {
            properties: &self.properties,
        };
        let endpoints = self.endpoints("listeners")?;
        let advertised = self.endpoints("advertised.listeners")?;
        let primary_name = self.primary_listener_name()?;
        let mut specs = vec![settings.secure(
            &primary_name,
            self.listen,
            primary.clone(),
            Addressing::Registered,
        )?];
        for e in endpoints.iter().filter(|e| e.name != primary_name) {
            let bind = e.bind_address()?;
            let announced = match advertised.iter().find(|a| a.name == e.name) {
                Some(a) => Advertised {
                    host: a.host.clone(),
                    port: a.port.into(),
                },
                None if bind.ip().is_unspecified() => {
                    return Err(ListenerError::AdvertiseRequired(e.name.clone()).into());
                }
                None => Advertised {
                    host: bind.ip().to_string(),
                    port: e.port.into(),
                },
            };
            if specs.iter().any(|s| s.name == e.name) {
                return Err(ListenerError::Duplicate(e.name.clone()).into());
            }
            specs.push(settings.secure(&e.name, bind, announced, Addressing::Registered)?);
        }
        if let Some(bind) = self.external_listen {
            let address = self
                .external_address(self.node_id)
                .ok_or(ConfigError::ExternalAddressRequired(self.node_id))?;
            let name = "EXTERNAL";
            // The flag-made external listener is PLAINTEXT unless the file maps it.
            let spec = match settings.protocol_of(name) {
                Ok(_) => settings.secure(name, bind, address, Addressing::External)?,
                Err(_) => ListenerSpec {
                    name: name.into(),
                    protocol: crate::listeners::SecurityProtocol::Plaintext,
                    bind,
                    advertised: address,
                    addressing: Addressing::External,
                    tls: None,
                    sasl_mechanisms: Vec::new(),
                },
            };
            specs.push(spec);
        }
        Ok(specs)
    }

    /// `inter.broker.listener.name`, else the first of `listeners`, else PLAINTEXT.
    pub fn primary_listener_name(&self) -> Result<String, ConfigError> {
        let endpoints = self.endpoints("listeners")?;
        match self.properties.get("inter.broker.listener.name") {
            Some(name) => {
                let name = name.trim().to_ascii_uppercase();
                if !endpoints.iter().any(|e| e.name == name) {
                    return Err(ListenerError::UnknownPrimary(name).into());
                }
                Ok(name)
            }
            None => Ok(endpoints
                .first()
                .map_or_else(|| "PLAINTEXT".to_string(), |e| e.name.clone())),
        }
    }

    fn endpoints(&self, key: &str) -> Result<Vec<crate::listeners::Endpoint>, ConfigError> {
        match self.properties.get(key) {
            None => Ok(Vec::new()),
            Some(v) => parse_endpoints(v).ok_or_else(|| {
                let first = v.to_string();
                if key == "listeners" {
                    ListenerError::BadListener(first).into()
                } else {
                    ListenerError::BadAdvertisedListener(first).into()
                }
            }),
        }
    }

    /// `authorizer.class.name` (any value turns ACL enforcement on), `super.users` and
    /// `allow.everyone.if.no.acl.found`; `None` when nothing is enforced.
    pub fn authorizer(&self) -> Result<Option<AuthorizerConfig>, ConfigError> {
        let enabled = self
            .properties
            .get("authorizer.class.name")
            .is_some_and(|v| !v.trim().is_empty());
        if !enabled {
            return Ok(None);
        }
        let allow_everyone = match self
            .properties
            .get("allow.everyone.if.no.acl.found")
            .map(|v| v.trim())
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::BadSetting {
                    key: "allow.everyone.if.no.acl.found".into(),
                    value: other.into(),
                    reason: "must be true or false".into(),
                });
            }
        };
        Ok(Some(AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users(
                self.properties
                    .get("super.users")
                    .map_or("", String::as_str),
            ),
            allow_everyone_if_no_acl_found: allow_everyone,
        }))
    }

    /// `ssl.principal.mapping.rules` (DEFAULT: the certificate's subject DN).
    pub fn principal_mapper(&self) -> Result<PrincipalMapper, ConfigError> {
        match self.properties.get("ssl.principal.mapping.rules") {
            None => Ok(PrincipalMapper::default_rules()),
            Some(rules) => PrincipalMapper::parse(rules).map_err(|e| ConfigError::BadSetting {
                key: "ssl.principal.mapping.rules".into(),
                value: rules.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// `--add-scram`: (user, mechanism, password) for each entry.
    pub fn scram_bootstrap(&self) -> Result<Vec<(String, ScramMechanism, String)>, ConfigError> {
        self.add_scram
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|entry| {
                parse_add_scram(entry).ok_or_else(|| ConfigError::BadAddScram(entry.into()))
            })
            .collect()
    }
}

/// `SCRAM-SHA-512=[name=admin,password=admin-secret]` (quotes around the values allowed).
fn parse_add_scram(entry: &str) -> Option<(String, ScramMechanism, String)> {
    let (mechanism, rest) = entry.split_once('=')?;
    let mechanism = ScramMechanism::from_name(mechanism.trim())?;
    let body = rest.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut name = None;
    let mut password = None;
    for field in body.split(',') {
        let (key, value) = field.split_once('=')?;
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "name" => name = Some(value),
            "password" => password = Some(value),
            "iterations" => {}
            _ => return None,
        }
    }
    Some((name.filter(|n| !n.is_empty())?, mechanism, password?))
}

/// The flag defaults the file sets: (argument id, value).
fn flag_defaults(
    props: &BTreeMap<String, String>,
) -> Result<Vec<(&'static str, String)>, LoadError> {
    let mut out: Vec<(&'static str, String)> = KAFKA_KEYS
        .iter()
        .filter_map(|(key, id)| props.get(*key).map(|v| (*id, v.trim().to_string())))
        .collect();
    if let Some(dirs) = props.get("log.dirs").or_else(|| props.get("log.dir")) {
        // Krait keeps one RocksDB database; the first directory holds it.
        if let Some(first) = dirs.split(',').map(str::trim).find(|d| !d.is_empty()) {
            out.push(("data_dir", first.to_string()));
        }
    }
    if let Some(ms) = retention_ms(props)? {
        out.push(("retention_ms", ms.to_string()));
    }
    let probe = BrokerConfig {
        properties: props.clone(),
        ..BrokerConfig::try_parse_defaults()
    };
    let endpoints = probe.endpoints("listeners")?;
    let primary = probe.primary_listener_name()?;
    if let Some(e) = endpoints.iter().find(|e| e.name == primary) {
        out.push((
            "listen",
            e.bind_address().map_err(ConfigError::from)?.to_string(),
        ));
        let advertised = probe.endpoints("advertised.listeners")?;
        if let Some(a) = advertised.iter().find(|a| a.name == primary) {
            out.push(("advertise", format!("{}:{}", bracket(&a.host), a.port)));
        }
    }
    Ok(out)
}

/// The rack a `--rack-file` holds. Empty is an error rather than "no rack": whoever wrote the
/// file meant the broker to have one, and a broker without it would silently break the
/// spreading of replicas over racks.
fn read_rack_file(path: &std::path::Path) -> Result<String, LoadError> {
    let failed = |reason: String| LoadError::RackFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let rack = text.trim();
    if rack.is_empty() {
        return Err(failed("the file is empty".into()));
    }
    Ok(rack.to_string())
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Kafka's log.retention.ms, else .minutes, else .hours.
fn retention_ms(props: &BTreeMap<String, String>) -> Result<Option<i64>, LoadError> {
    for (key, factor) in [
        ("log.retention.ms", 1),
        ("log.retention.minutes", 60_000),
        ("log.retention.hours", 3_600_000),
    ] {
        if let Some(v) = props.get(key) {
            let n: i64 = v.trim().parse().map_err(|_| ConfigError::BadSetting {
                key: key.into(),
                value: v.clone(),
                reason: "not a whole number".into(),
            })?;
            return Ok(Some(if n < 0 { -1 } else { n.saturating_mul(factor) }));
        }
    }
    Ok(None)
}

impl BrokerConfig {
    /// The configuration with every flag at its built-in default.
    fn try_parse_defaults() -> Self {
        <Self as clap::Parser>::parse_from(["krait-broker"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listeners::SecurityProtocol;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn load(file: &tempfile::NamedTempFile, extra: &[&str]) -> Result<BrokerConfig, LoadError> {
        let path = file.path().to_str().unwrap().to_string();
        let mut args = vec!["krait-broker".to_string(), "--config".into(), path];
        args.extend(extra.iter().map(|s| s.to_string()));
        BrokerConfig::load_from(args)
    }

    #[test]
    fn kafka_keys_set_the_broker_and_flags_win_over_the_file() {
        let f = write(
            "node.id=7\nlog.dirs=/var/lib/krait/a,/var/lib/krait/b\nnum.partitions=6\nlog.retention.hours=2\nauto.create.topics.enable=false\nmin.insync.replicas=2\n",
        );
        let c = load(&f, &["--default-partitions", "3"]).unwrap();
        assert_eq!(c.node_id, 7);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/krait/a"));
        assert_eq!(c.default_partitions, 3, "the flag wins");
        assert_eq!(c.retention_ms, 2 * 3_600_000);
        assert!(!c.auto_create_topics);
        assert_eq!(c.min_insync_replicas, 2);
        assert_eq!(c.storage_memory_mb(), 48, "the default budget's share");
    }

    #[test]
    fn the_memory_budget_comes_from_the_file_and_its_shares_follow_it() {
        let c = load(
            &write(
                "memory.mb=512
fetch.memory.max.bytes=1048576
",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.memory_mb, 512);
        assert_eq!(c.storage_memory_mb(), 192);
        assert_eq!(c.queued_max_request_bytes(), 64 << 20);
        assert_eq!(c.fetch_memory_max_bytes(), 1 << 20, "set on its own");
        let err = load(&write("memory.mb=16\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("memory-mb"), "{err}");
    }

    #[test]
    fn the_storage_memory_budget_comes_from_the_file_and_is_at_least_16_mib() {
        let c = load(&write("storage.memory.mb=256\n"), &[]).unwrap();
        assert_eq!(c.storage_memory_mb(), 256);
        let err = load(&write("storage.memory.mb=8\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("storage-memory-mb"), "{err}");
    }

    #[test]
    fn a_bad_value_in_the_file_is_reported_with_its_flag() {
        let f = write("num.partitions=many\n");
        let err = load(&f, &[]).unwrap_err();
        assert!(err.to_string().contains("default-partitions"), "{err}");
        let missing =
            BrokerConfig::load_from(["krait-broker", "--config", "/nonexistent/krait.properties"]);
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/krait.properties")
        );
    }

    #[test]
    fn listeners_come_from_the_file_with_the_first_one_primary() {
        let f = write(
            "listeners=SASL_SSL://127.0.0.1:19093,PLAINTEXT://127.0.0.1:19092,CLIENT://0.0.0.0:19094\n\
             advertised.listeners=SASL_SSL://broker-0.krait:19093,CLIENT://broker-0.example.com:30094\n\
             listener.security.protocol.map=CLIENT:SASL_PLAINTEXT\n\
             ssl.keystore.location=/etc/krait/tls/broker.pem\n",
        );
        let c = load(&f, &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:19093");
        let primary = c.validate().unwrap();
        assert_eq!(primary.host, "broker-0.krait");
        let specs = c.listeners(&primary).unwrap();
        let names: Vec<_> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.protocol))
            .collect();
        assert_eq!(
            names,
            [
                ("SASL_SSL", SecurityProtocol::SaslSsl),
                ("PLAINTEXT", SecurityProtocol::Plaintext),
                ("CLIENT", SecurityProtocol::SaslPlaintext)
            ]
        );
        assert_eq!(specs[1].advertised.host, "127.0.0.1");
        assert_eq!(specs[2].advertised.port, 30094);
    }

    #[test]
    fn overrides_set_kafka_keys_over_the_file_and_work_without_one() {
        let f = write(
            "listeners=SSL://127.0.0.1:0\nlistener.security.protocol.map=SSL:SSL,CLIENT:SASL_PLAINTEXT\nnum.partitions=2\n",
        );
        let c = load(
            &f,
            &[
                "--override=listeners=CLIENT://127.0.0.1:0",
                "--override",
                "advertised.listeners=CLIENT://broker-0.krait:9094",
                "--override=sasl.enabled.mechanisms=SCRAM-SHA-512",
            ],
        )
        .unwrap();
        assert_eq!(c.properties["listeners"], "CLIENT://127.0.0.1:0");
        assert_eq!(c.default_partitions, 2, "the file's other keys stay");
        let specs = c.listeners(&c.validate().unwrap()).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "CLIENT");
        assert_eq!(specs[0].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(specs[0].advertised.host, "broker-0.krait");
        assert_eq!(specs[0].advertised.port, 9094);

        let c = BrokerConfig::load_from([
            "krait-broker",
            "--override=authorizer.class.name=StandardAuthorizer",
            "--override=super.users=User:krait-operator",
        ])
        .unwrap();
        assert!(c.authorizer().unwrap().is_some());
        let bad = BrokerConfig::load_from(["krait-broker", "--override=no-equals-sign"]);
        assert!(matches!(bad, Err(LoadError::Override(_))), "{bad:?}");
    }

    #[test]
    fn without_a_file_the_broker_is_one_plaintext_listener() {
        let c = BrokerConfig::load_from(["krait-broker"]).unwrap();
        let specs = c.listeners(&c.validate().unwrap()).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(specs[0].bind.to_string(), "127.0.0.1:9092");
        assert!(c.authorizer().unwrap().is_none());
    }

    #[test]
    fn an_authorizer_turns_acls_on_with_its_super_users() {
        let f = write(
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\nsuper.users=User:admin;User:operator\n",
        );
        let c = load(&f, &[]).unwrap();
        let a = c.authorizer().unwrap().unwrap();
        assert!(a.super_users.contains("User:operator"));
        assert!(!a.allow_everyone_if_no_acl_found);
    }

    #[test]
    fn add_scram_reads_kafka_storage_syntax() {
        let c = BrokerConfig::load_from([
            "krait-broker",
            "--add-scram",
            "SCRAM-SHA-512=[name=admin,password=admin-secret];SCRAM-SHA-256=[name=\"bob\",password=\"pw\"]",
        ])
        .unwrap();
        let users = c.scram_bootstrap().unwrap();
        assert_eq!(
            users[0],
            (
                "admin".into(),
                ScramMechanism::Sha512,
                "admin-secret".into()
            )
        );
        assert_eq!(users[1].0, "bob");
        let bad = BrokerConfig::load_from([
            "krait-broker",
            "--add-scram",
            "SCRAM-SHA-1=[name=a,password=b]",
        ])
        .unwrap();
        assert!(bad.scram_bootstrap().is_err());
    }

    #[test]
    fn the_rack_file_sets_the_rack_over_the_config_files_broker_rack() {
        let rack = write("eu-west-1b\n");
        let props = write("broker.rack=from-the-file\n");
        let flag = format!("--rack-file={}", rack.path().display());
        let c = load(&props, &[&flag]).unwrap();
        assert_eq!(c.rack.as_deref(), Some("eu-west-1b"), "trimmed, and wins");
        let settings = c.cluster_settings(&c.validate().unwrap()).unwrap();
        assert_eq!(settings.rack.as_deref(), Some("eu-west-1b"));
    }

    #[test]
    fn an_empty_or_missing_rack_file_stops_the_broker_naming_the_file() {
        let empty = write(" \n");
        let flag = format!("--rack-file={}", empty.path().display());
        let err = BrokerConfig::load_from(["krait-broker", &flag]).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        assert!(err.to_string().contains("--rack-file"), "{err}");
        let err =
            BrokerConfig::load_from(["krait-broker", "--rack-file=/nonexistent/rack"]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rack"), "{err}");
    }

    #[test]
    fn rack_and_rack_file_together_are_refused() {
        let rack = write("a\n");
        let flag = format!("--rack-file={}", rack.path().display());
        let both = BrokerConfig::load_from(["krait-broker", "--rack=b", &flag]);
        assert!(matches!(both, Err(LoadError::Args(_))));
    }
}
