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

use crate::admission::Admission;
use crate::broker::Broker;
use krait_tls::TlsAcceptor;

use crate::config::BrokerConfig;
use crate::listeners::ListenerSpec;
use crate::{http, net, retention, security};

/// How long a broker that handed its leaderships over keeps answering clients before it
/// closes their connections.
const HANDOVER_GRACE: Duration = Duration::from_millis(500);
/// How often a broker still waiting to register says so.
const REGISTRATION_NOTICE: Duration = Duration::from_secs(10);

/// Every socket the broker listens on, bound before anything else starts so that a port
/// collision is reported at once.
struct Listeners {
    /// The Kafka listeners, the primary first, each with its TLS acceptor where it has TLS.
    kafka: Vec<(ListenerSpec, Option<TlsAcceptor>, TcpListener)>,
    cluster: Option<TcpListener>,
    http: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &BrokerConfig, specs: Vec<ListenerSpec>) -> anyhow::Result<Self> {
        let mut kafka = Vec::new();
        for mut spec in specs {
            // Certificates are read before binding, so a bad file is reported at once.
            let tls = match &spec.tls {
                Some(settings) => Some(
                    TlsAcceptor::new(settings.clone())
                        .map_err(|e| anyhow::anyhow!("listener {}: {e}", spec.name))?,
                ),
                None => None,
            };
            let purpose = format!(" for listener {}", spec.name);
            let socket = bind(spec.bind, &purpose).await?;
            // A listener bound to port 0 (tests) announces the port it got.
            if spec.advertised.port == 0 {
                spec.advertised.port = socket.local_addr()?.port().into();
            }
            kafka.push((spec, tls, socket));
        }
        Ok(Self {
            kafka,
            http: bind_optional(config.http_listen, " for HTTP").await?,
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
    if config.advertise.is_none() && config.listen.port() == 0 {
        // Bound to port 0: the primary listener announces the port it gets.
        advertised.port = 0;
    }
    let specs = config.listeners(&advertised)?;
    // Lock the data directory before binding: a second broker on the same directory should
    // say so, whatever else it collides on.
    let store = Broker::open_store(&config)?;
    let listeners = Listeners::bind(&config, specs).await?;
    let (primary, _, primary_socket) = &listeners.kafka[0];
    let local = primary_socket.local_addr()?;
    advertised = primary.advertised.clone();
    let http_local = listeners
        .http
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let specs = listeners.kafka.iter().map(|(s, _, _)| s.clone()).collect();
    let broker = Broker::start(config, advertised, specs, store, listeners.cluster).await?;
    for (spec, tls, _) in &listeners.kafka {
        if let Some(acceptor) = tls {
            broker
                .metrics
                .watch_certificate(&spec.name, acceptor.clone());
        }
    }
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
    for (spec, _, socket) in &listeners.kafka {
        info!(listener = %spec.name, protocol = %spec.protocol, address = ?socket.local_addr().ok(), advertised = %format!("{}:{}", spec.advertised.host, spec.advertised.port), "Kafka listener");
    }
    if let Err(e) = security::add_scram_users(&broker).await {
        stop(&broker, http.into_iter()).await;
        return Err(e);
    }
    let background = [
        tokio::spawn(retention::run(broker.clone())),
        tokio::spawn(retention::run_cleaner(broker.clone())),
        broker.coordinator.spawn_ticker(Duration::from_millis(100)),
    ];
    let failed = serve_clients(&broker, listeners.kafka, shutdown).await;
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
    kafka: Vec<(ListenerSpec, Option<TlsAcceptor>, TcpListener)>,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<String> {
    let failed = Arc::new(Mutex::new(None::<String>));
    let (stop_others, others_stopped) = tokio::sync::watch::channel(false);
    let admission = Admission::new(&broker.config);
    info!(
        max_connections = admission.max_connections(),
        max_connections_per_ip = broker.config.max_connections_per_ip,
        queued_max_request_bytes = admission.available_bytes(),
        "client connection limits"
    );
    let mut kafka = kafka.into_iter();
    let (primary, primary_tls, primary_socket) = kafka.next()?;
    let others: Vec<_> = kafka
        .map(|(spec, tls, socket)| {
            let mut stopped = others_stopped.clone();
            tokio::spawn(net::serve(
                socket,
                Arc::new(spec),
                tls,
                broker.clone(),
                admission.clone(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ))
        })
        .collect();
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
    net::serve(
        primary_socket,
        Arc::new(primary),
        primary_tls,
        broker.clone(),
        admission,
        stop,
    )
    .await;
    let _ = stop_others.send(true);
    for listener in others {
        let _ = listener.await;
    }
    failed.lock_unpoisoned().take()
}

/// Stops the background tasks, writes the high watermarks that moved since their last
/// checkpoint, and leaves the metadata quorum.
async fn stop(broker: &Broker, tasks: impl Iterator<Item = JoinHandle<()>>) {
    for task in tasks {
        task.abort();
    }
    broker.cluster.replicas.checkpoint_high_watermarks();
    broker.cluster.quorum.shutdown().await;
}
