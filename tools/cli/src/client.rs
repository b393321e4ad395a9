//! Connection settings shared by every command, and the librdkafka clients built from them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;

use krait_admin::WireError;

use crate::command_config::{self, CommandConfig};

/// Output format of listings and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned, human-readable tables.
    Table,
    /// Machine-readable JSON.
    Json,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Broker to bootstrap from, HOST:PORT (comma-separated for several).
    #[arg(
        long,
        global = true,
        env = "KRAIT_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// How long to wait for the cluster before giving up, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "KRAIT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
    /// A Kafka client properties file (security.protocol, sasl.*, ssl.*, any librdkafka
    /// setting), as kafka-topics.sh --command-config takes it. --bootstrap-server wins over
    /// its bootstrap.servers.
    #[arg(long, global = true, env = "KRAIT_COMMAND_CONFIG")]
    pub command_config: Option<PathBuf>,
    /// The settings read from `command_config` by [`Global::load_command_config`].
    #[arg(skip)]
    pub client: CommandConfig,
}

impl Global {
    /// Reads `--command-config`, if given; every client of the run then uses its settings.
    pub fn load_command_config(&mut self) -> Result<(), command_config::CommandConfigError> {
        if let Some(path) = &self.command_config {
            self.client = command_config::load(path)?;
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// A librdkafka configuration for this cluster, with the command config's settings on
    /// top; librdkafka's own logging is kept to errors.
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_server)
            .set("client.id", "krait-cli")
            .set("socket.timeout.ms", self.timeout_ms.max(10).to_string())
            .set_log_level(RDKafkaLogLevel::Error);
        for (key, value) in &self.client.librdkafka {
            c.set(key, value);
        }
        c
    }

    /// An admin-protocol session on the bootstrap servers (krait-admin), for what
    /// librdkafka's admin API does not expose.
    pub fn session(&self) -> anyhow::Result<krait_admin::Admin> {
        Ok(krait_admin::Admin::connect_with(
            &self.bootstrap_server,
            self.timeout(),
            self.client.security.clone(),
        )?)
    }

    /// Why a failed command may have failed when TLS or SASL is configured: librdkafka reports
    /// a refused login or TLS handshake only as a transport failure or a timeout, so the first
    /// bootstrap server is asked once more through krait-admin, whose error names the cause.
    /// `None` when `failure` already says it, or the login works.
    pub fn security_cause(&self, failure: &str) -> Option<String> {
        let security = &self.client.security;
        if security.tls.is_none() && security.sasl.is_none() {
            return None;
        }
        if failure.contains("authentication to ") || failure.contains("TLS to ") {
            return None;
        }
        let address = self.bootstrap_server.split(',').next()?.trim();
        match krait_admin::Connection::open_with(address, self.timeout(), security) {
            Err(e @ (WireError::Authentication { .. } | WireError::Tls { .. })) => {
                Some(e.to_string())
            }
            _ => None,
        }
    }

    pub fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.config()
            .create()
            .context("cannot create an admin client")
    }

    pub fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(self.timeout()))
            .request_timeout(Some(self.timeout()))
    }
}

/// The partition ids of `topic`, or an error saying it does not exist.
pub fn partitions(
    g: &Global,
    client: &impl rdkafka::consumer::Consumer,
    topic: &str,
) -> anyhow::Result<Vec<i32>> {
    let md = client
        .fetch_metadata(Some(topic), g.timeout())
        .context("cannot fetch metadata")?;
    match md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    {
        Some(t) => Ok(t.partitions().iter().map(|p| p.id()).collect()),
        None => anyhow::bail!("topic {topic} does not exist"),
    }
}

/// Runs one future to completion on this thread. The admin API is async, but the CLI does
/// one thing at a time: a runtime would be weight without use.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Splits `k=v`, the form of `--config` and `--set` arguments.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("retention.ms=1000"),
            Ok(("retention.ms".into(), "1000".into()))
        );
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("k="), Ok(("k".into(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }
}
