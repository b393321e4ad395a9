//! The broker process's life: bind every listener, start the broker, wait until it is a
//! registered member, serve clients until shutdown (with a controlled handover of its
//! leaderships), then stop the background tasks. Requests themselves are `net`'s and
//! `dispatch`'s business.

use krait_sync::MutexExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{Advertised, BrokerConfig};
use crate::context::Listener;
use crate::{http, net, retention};

/// How long a broker that handed its leaderships over keeps answering clients before it
/// closes their connections.
const HANDOVER_GRACE: Duration = Duration::from_millis(500);
/// How often a broker still waiting to register says so.
const REGISTRATION_NOTICE: Duration = Duration::from_secs(10);

/// Every socket the broker listens on, bound before anything else starts so that a port
/// collision is reported at once.
struct Listeners {
    kafka: TcpListener,
    external: Option<TcpListener>,
    cluster: Option<TcpListener>,
    http: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &BrokerConfig) -> anyhow::Result<Self> {
        Ok(Self {
            kafka: bind(config.listen, "").await?,
            http: bind_optional(config.http_listen, " for HTTP").await?,
            external: bind_optional(config.external_listen, " for external clients").await?,
            cluster: bind_optional(config.cluster_listen, " for cluster traffic").await?,
        })
    }
}

async fn bind(addr: SocketAddr, purpose: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen{purpose} on {addr}: {e}"))
}

async fn bind_optional(
    addr: Option<SocketAddr>,
    purpose: &str,
) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => bind(addr, purpose).await.map(Some),
        None => Ok(None),
    }
}

/// Opens the data directory, binds the listeners and serves until `shutdown` resolves.
pub async fn run(config: BrokerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut advertised = config.validate()?;
    // Lock the data directory before binding: a second broker on the same directory should
    // say so, whatever else it collides on.
    let store = Broker::open_store(&config)?;
    let listeners = Listeners::bind(&config).await?;
    let local = listeners.kafka.local_addr()?;
    let http_local = listeners
        .http
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    if config.advertise.is_none() && config.listen.port() == 0 {
        advertised = Advertised {
            port: local.port().into(),
            ..advertised
        };
    }
    let broker = Broker::start(config, advertised, store, listeners.cluster).await?;
    // Probes answer from now on; /readyz says whether the broker is a registered member yet.
    let http = listeners
        .http
        .map(|l| tokio::spawn(http::serve(l, broker.clone())));
    tokio::pin!(shutdown);
    if !registered(&broker, &mut shutdown).await? {
        broker.cluster.quorum.shutdown().await;
        info!("stopped before joining the cluster");
        return Ok(());
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
    let background = [
        tokio::spawn(retention::run(broker.clone())),
        broker.coordinator.spawn_ticker(Duration::from_millis(100)),
    ];
    let failed = serve_clients(&broker, listeners.kafka, listeners.external, shutdown).await;
    stop(&broker, background.into_iter().chain(http)).await;
    if let Some(why) = failed {
        return Err(anyhow::anyhow!(why));
    }
    info!("stopped");
    Ok(())
}

/// Waits until this broker is a registered member: until then the kernel queues client
/// connections. `false` when `shutdown` came first.
async fn registered(
    broker: &Broker,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<bool> {
    let failure = broker.cluster.clone();
    let mut waited = Duration::ZERO;
    loop {
        tokio::select! {
            ready = broker.wait_ready(REGISTRATION_NOTICE) => {
                if ready {
                    return Ok(true);
                }
                waited += REGISTRATION_NOTICE;
                warn!(waited_s = waited.as_secs(), controller = ?broker.cluster.controller_id(), "not registered with a controller yet; waiting (are the other voters up?)");
            }
            why = failure.failed() => return Err(anyhow::anyhow!(why)),
            () = shutdown.as_mut() => return Ok(false),
        }
    }
}

/// Serves the Kafka listeners until `shutdown` (after a controlled handover of this broker's
/// leaderships) or until the cluster side fails; returns the failure, if any.
async fn serve_clients(
    broker: &Arc<Broker>,
    kafka: TcpListener,
    external: Option<TcpListener>,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<String> {
    let failed = Arc::new(Mutex::new(None::<String>));
    let (stop_external, external_stopped) = tokio::sync::oneshot::channel::<()>();
    let external = external.map(|l| {
        info!(address = ?l.local_addr().ok(), "external Kafka listener");
        tokio::spawn(net::serve(l, Listener::External, broker.clone(), async {
            let _ = external_stopped.await;
        }))
    });
    let stop = {
        let failed = failed.clone();
        let cluster = broker.cluster.clone();
        let timeout = 2 * broker.cluster.settings.session_timeout;
        async move {
            tokio::select! {
                () = shutdown => {
                    if cluster.controlled_shutdown(timeout).await {
                        // Clients still connected learn of the new leaders from this broker's
                        // NOT_LEADER_OR_FOLLOWER answers and its Metadata, instead of from a
                        // closed connection, which librdkafka retries against this broker
                        // with backoff before it asks for metadata again.
                        tokio::time::sleep(HANDOVER_GRACE).await;
                    }
                }
                why = cluster.failed() => {
                    *failed.lock_unpoisoned() = Some(why);
                }
            }
        }
    };
    net::serve(kafka, Listener::Internal, broker.clone(), stop).await;
    let _ = stop_external.send(());
    if let Some(external) = external {
        let _ = external.await;
    }
    failed.lock_unpoisoned().take()
}

/// Stops the background tasks and leaves the metadata quorum.
async fn stop(broker: &Broker, tasks: impl Iterator<Item = JoinHandle<()>>) {
    for task in tasks {
        task.abort();
    }
    broker.cluster.quorum.shutdown().await;
}
