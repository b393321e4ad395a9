//! `krait-operator run`: the HTTP endpoint, leader election, then the KafkaCluster and
//! KafkaTopic controllers over the watched namespaces. Losing leadership ends the run (the
//! pod restarts and campaigns again) rather than risking two active reconcilers.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use futures_util::future::join_all;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use krait_crd::{KafkaCluster, KafkaTopic, KafkaUser};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cluster::build::RackInit;
use crate::context::Context;
use crate::events::Recorder;
use crate::http::{self, Health};
use crate::kafka::RdKafkaConnector;
use crate::leader::{self, LeaseConfig};
use crate::metrics::Metrics;
use crate::names::{ClusterNames, MANAGER};
use crate::{cluster, topic, user};

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    pub http_listen: SocketAddr,
    /// `None` runs without leader election (a single replica).
    pub lease: Option<LeaseConfig>,
    /// This replica's name (its pod's), reported on the events it publishes.
    pub identity: String,
    /// What rack-aware brokers' init container runs and the ClusterRole it is bound to.
    pub rack: RackInit,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding the HTTP endpoint on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("connecting to the Kubernetes API: {0}")]
    Client(kube::Error),
    #[error("lost leadership of lease {0}")]
    LostLeadership(String),
}

/// One controller, running until shutdown.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs until a signal, or until leadership is lost.
pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health {
        metrics: metrics.clone(),
        ..Health::default()
    });
    let listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| RunError::Bind(config.http_listen, e))?;
    tokio::spawn(http::serve(listener, health.clone()));
    // Ready means able to take over: a standby replica is as ready as the leader.
    health.ready.store(true, Ordering::Relaxed);

    let (leading_tx, mut leading) = watch::channel(config.lease.is_none());
    if let Some(lease) = config.lease.clone() {
        info!(lease = %lease.name, identity = %lease.identity, "campaigning for leadership");
        tokio::spawn(leader::campaign(client.clone(), lease, leading_tx));
        // An error here means the campaign task ended, which it never does.
        let _ = leading.wait_for(|l| *l).await;
    }
    info!(namespaces = ?config.namespaces, "leading: starting controllers");
    let recorder = Recorder::new(client.clone(), MANAGER, &config.identity);
    let ctx = Arc::new(Context {
        client,
        metrics,
        recorder,
        kafka: Arc::new(RdKafkaConnector::default()),
        rack: config.rack.clone(),
    });
    let controllers = join_all(controllers(&ctx, &config.namespaces));
    tokio::select! {
        _ = controllers => Ok(()),
        _ = leading.wait_for(|l| !*l), if config.lease.is_some() => {
            let name = config.lease.map(|l| l.name).unwrap_or_default();
            Err(RunError::LostLeadership(name))
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A cluster, a topic and a user controller per watched namespace (or one each for all).
pub fn controllers(ctx: &Arc<Context>, namespaces: &[String]) -> Vec<Task> {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let mut tasks: Vec<Task> = Vec::new();
    for scope in scopes {
        tasks.push(Box::pin(cluster_controller(ctx.clone(), scope)));
        tasks.push(Box::pin(topic_controller(ctx.clone(), scope)));
        tasks.push(Box::pin(user_controller(ctx.clone(), scope)));
    }
    tasks
}

fn owned_watch() -> watcher::Config {
    // Only objects the operator made: a cluster-wide ConfigMap watch would be expensive.
    watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"))
}

fn cluster_controller(
    ctx: Arc<Context>,
    scope: Option<&str>,
) -> impl Future<Output = ()> + Send + use<> {
    let client = ctx.client.clone();
    let controller = Controller::new(
        api::<KafkaCluster>(&client, scope),
        watcher::Config::default(),
    );
    // Each cluster's state is measured from this cache at every scrape.
    ctx.metrics.watch_clusters(controller.store());
    controller
        .owns(api::<StatefulSet>(&client, scope), owned_watch())
        .owns(api::<Service>(&client, scope), owned_watch())
        .owns(api::<ConfigMap>(&client, scope), owned_watch())
        .owns(api::<PodDisruptionBudget>(&client, scope), owned_watch())
        .owns(api::<ServiceAccount>(&client, scope), owned_watch())
        // A deleted or edited certificate Secret is put back at once.
        .owns(api::<Secret>(&client, scope), owned_watch())
        .shutdown_on_signal()
        .run(cluster::reconcile, cluster::reconcile::error_policy, ctx)
        .for_each(log_result)
}

fn topic_controller(
    ctx: Arc<Context>,
    scope: Option<&str>,
) -> impl Future<Output = ()> + Send + use<> {
    let client = ctx.client.clone();
    Controller::new(
        api::<KafkaTopic>(&client, scope),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(topic::reconcile, topic::reconcile::error_policy, ctx)
    .for_each(log_result)
}

fn user_controller(
    ctx: Arc<Context>,
    scope: Option<&str>,
) -> impl Future<Output = ()> + Send + use<> {
    let client = ctx.client.clone();
    let controller = Controller::new(api::<KafkaUser>(&client, scope), watcher::Config::default());
    let users = controller.store();
    // TLS users' certificate expiry is read from this cache at every scrape.
    ctx.metrics.watch_users(users.clone());
    // A user's password Secret, generated or named by the spec: a change sets the password in
    // Kafka again at once (rotation), and a deleted generated one is made again. A change of
    // its cluster's clients CA Secret (a renewal switching the signing CA) re-issues its
    // certificate.
    controller
        .watches(
            api::<Secret>(&client, scope),
            watcher::Config::default(),
            move |secret| {
                let namespace = secret.metadata.namespace.clone();
                let name = secret.metadata.name.clone().unwrap_or_default();
                users
                    .state()
                    .into_iter()
                    .filter(|u| {
                        let clients_ca = ClusterNames::new(
                            &u.spec.cluster_ref,
                            u.metadata.namespace.as_deref().unwrap_or_default(),
                        )
                        .clients_ca_secret();
                        u.metadata.namespace == namespace
                            && (user::plan::password_ref(u).secret == name || clients_ca == name)
                    })
                    .map(|u| ObjectRef::from_obj(u.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(user::reconcile, user::reconcile::error_policy, ctx)
        .for_each(log_result)
}

async fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) {
    match result {
        Ok(object) => debug!(?object, "reconciled"),
        Err(error) => warn!(%error, "reconcile failed"),
    }
}
