//! Krait's Kafka-compatible broker: the listener, the per-API request handlers and the state
//! they share. Wire encoding lives in `krait-protocol`, bytes on disk in `krait-storage`.

pub mod alloc;
pub mod broker;
pub mod config;
pub mod dispatch;
pub mod handlers;
pub mod http;
pub mod metrics;
pub mod net;
pub mod retention;
pub mod topic_config;
pub mod topics;

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

use crate::broker::Broker;
use crate::config::{Advertised, BrokerConfig};

/// Opens the data directory, binds the listener and serves until `shutdown` resolves.
pub async fn run(config: BrokerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut advertised = config.validate()?;
    // Lock the data directory before binding: a second broker on the same directory should
    // say so, whatever else it collides on.
    let store = Broker::open_store(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    let http_listener = match config.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {addr}: {e}"))?,
        ),
        None => None,
    };
    let http_local = http_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    if config.advertise.is_none() && config.listen.port() == 0 {
        advertised = Advertised {
            port: local.port().into(),
            ..advertised
        };
    }
    let broker = Arc::new(Broker::with_store(config, advertised, store)?);
    info!(
        node_id = broker.node_id(),
        cluster_id = %broker.cluster_id,
        data_dir = %broker.config.data_dir.display(),
        topics = broker.topics.all().len(),
        advertised = %format!("{}:{}", broker.advertised.host, broker.advertised.port),
        http = ?http_local,
        "krait-broker listening on {local}"
    );
    let http = http_listener.map(|l| tokio::spawn(http::serve(l, broker.clone())));
    let retention = tokio::spawn(retention::run(broker.clone()));
    let group_clock = broker
        .coordinator
        .spawn_ticker(std::time::Duration::from_millis(100));
    net::serve(listener, broker.clone(), shutdown).await;
    retention.abort();
    group_clock.abort();
    if let Some(http) = http {
        http.abort();
    }
    info!("stopped");
    Ok(())
}
