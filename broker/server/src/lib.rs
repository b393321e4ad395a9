//! Krait's Kafka-compatible broker: the listener, the per-API request handlers and the state
//! they share. Wire encoding lives in `krait-protocol`, bytes on disk in `krait-storage`.

pub mod alloc;
pub mod broker;
pub mod cluster;
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

/// How long a broker that handed its leaderships over keeps answering clients before it
/// closes their connections.
const HANDOVER_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

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
    let external_listener =
        match config.external_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen for external clients on {addr}: {e}")
            })?),
            None => None,
        };
    let cluster_listener =
        match config.cluster_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen for cluster traffic on {addr}: {e}")
            })?),
            None => None,
        };
    if config.advertise.is_none() && config.listen.port() == 0 {
        advertised = Advertised {
            port: local.port().into(),
            ..advertised
        };
    }
    let broker = Broker::start(config, advertised, store, cluster_listener).await?;
    let failure = broker.cluster.clone();
    // Probes answer from now on; /readyz says whether the broker is a registered member yet.
    let http = http_listener.map(|l| tokio::spawn(http::serve(l, broker.clone())));
    tokio::pin!(shutdown);
    // Clients are accepted once this broker is a registered member: until then the kernel
    // queues their connections.
    let mut waited = 0u64;
    loop {
        tokio::select! {
            ready = broker.wait_ready(std::time::Duration::from_secs(10)) => {
                if ready {
                    break;
                }
                waited += 10;
                tracing::warn!(waited_s = waited, controller = ?broker.cluster.controller_id(), "not registered with a controller yet; waiting (are the other voters up?)");
            }
            why = failure.failed() => return Err(anyhow::anyhow!(why)),
            () = &mut shutdown => {
                broker.cluster.quorum.shutdown().await;
                info!("stopped before joining the cluster");
                return Ok(());
            }
        }
    }
    info!(
        node_id = broker.node_id(),
        cluster_id = %broker.cluster_id(),
        controller = ?broker.cluster.controller_id(),
        data_dir = %broker.config.data_dir.display(),
        topics = broker.topics.all().len(),
        advertised = %format!("{}:{}", broker.advertised.host, broker.advertised.port),
        http = ?http_local,
        "krait-broker listening on {local}"
    );
    let retention = tokio::spawn(retention::run(broker.clone()));
    let group_clock = broker
        .coordinator
        .spawn_ticker(std::time::Duration::from_millis(100));
    let failed = Arc::new(std::sync::Mutex::new(None::<String>));
    let (stop_external, external_stopped) = tokio::sync::oneshot::channel::<()>();
    let external = external_listener.map(|l| {
        info!(address = ?l.local_addr().ok(), "external Kafka listener");
        tokio::spawn(net::serve(
            l,
            net::Listener::External,
            broker.clone(),
            async {
                let _ = external_stopped.await;
            },
        ))
    });
    let stop = {
        let failed = failed.clone();
        let cluster = broker.cluster.clone();
        let timeout = 2 * broker.cluster.settings.session_timeout;
        async move {
            tokio::select! {
                _ = shutdown => {
                    if cluster.controlled_shutdown(timeout).await {
                        // Clients still connected learn of the new leaders from this broker's
                        // NOT_LEADER_OR_FOLLOWER answers and its Metadata, instead of from a
                        // closed connection, which librdkafka retries against this broker
                        // with backoff before it asks for metadata again.
                        tokio::time::sleep(HANDOVER_GRACE).await;
                    }
                }
                why = failure.failed() => {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                }
            }
        }
    };
    net::serve(listener, net::Listener::Internal, broker.clone(), stop).await;
    let _ = stop_external.send(());
    if let Some(external) = external {
        let _ = external.await;
    }
    retention.abort();
    group_clock.abort();
    if let Some(http) = http {
        http.abort();
    }
    broker.cluster.quorum.shutdown().await;
    if let Some(why) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(anyhow::anyhow!(why));
    }
    info!("stopped");
    Ok(())
}
