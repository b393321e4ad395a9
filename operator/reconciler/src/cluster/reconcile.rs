//! The side-effecting shell of a cluster reconcile: reads the owned objects and the running
//! cluster's state (admin protocol), decides the day-2 step (`day2.rs`, pure), applies the
//! built objects that changed (server-side apply, one field manager), deletes owned objects
//! that are no longer wanted, carries out the one day-2 action (start reassignments, set or
//! clear the throttle, unregister brokers, evict one pod), and writes status only when it
//! differs. Storage changes (`storage.rs` decides, `volumes.rs` asks) grow the brokers' volume
//! claims and re-create the StatefulSet, pods orphaned, before it is applied. Holds no state
//! between calls: a reconcile that died part-way is finished by the next one from what it
//! observes.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::{NamespaceResourceScope, jiff};
use krait_crd::cluster::{CaStatus, DEFAULT_KAFKA_PORT, GenericListener};
use krait_crd::listener::PLAINTEXT_NAME;
use krait_crd::{KafkaCluster, KafkaClusterStatus};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, instrument, warn};

use super::build::secret::{stored_clients_ca, stored_issued, stored_password, stored_pki};
use super::build::{
    DesiredObjects, Shape, build, default_listener_of, default_voters, hash_of,
    plaintext_cluster_of, voters_of,
};
use super::cert_manager::{self, CertificatesState};
use super::day2::{self, Action as Day2Action};
use super::drift::contains;
use super::events;
use super::listeners;
use super::monitoring::{self, PodMonitorState};
use super::pki::issuer::{self, IssuerWant};
use super::pki::{self, Ca, CaKind, CaPolicy, CertError, ClusterPki};
use super::roll::WAITING_FOR_DISRUPTION_BUDGET;
use super::status::{Observations, apply_failed_status, cluster_status, invalid_status};
use super::validate::{ValidatedCluster, validate};
use super::{rack_binding, storage, volumes};
use crate::access::{AdminListener, admin_endpoint};
use crate::cluster_admin::{ClusterAdminError, ClusterState};
use crate::conditions::{DEGRADED, Decided, PROGRESSING};
use crate::context::Context;
use crate::events::Note;
use crate::kafka::AdminEndpoint;
use crate::names::{
    CLUSTER_TLS_ANNOTATION, ClusterNames, REBALANCE_ANNOTATION, RENEW_CLIENTS_CA_ANNOTATION,
    RENEW_CLUSTER_CA_ANNOTATION, RESTART_ANNOTATION,
};
use crate::status::write_status;

/// How long a settled cluster waits before being looked at again without any event.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a cluster still rolling out, scaling or moving partitions is looked at again.
const PROGRESS_RECHECK: Duration = Duration::from_secs(10);

/// A failed step of a cluster reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {kind}: {source}")]
    Read {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("deleting leftover {kind} {name}: {source}")]
    Delete {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("writing status: {0}")]
    Status(kube::Error),
    #[error("{action}: {source}")]
    Kafka {
        action: &'static str,
        source: ClusterAdminError,
    },
    #[error("restarting broker pod {name}: {source}")]
    Restart { name: String, source: kube::Error },
    #[error("removing the {REBALANCE_ANNOTATION} annotation: {0}")]
    Annotation(kube::Error),
    #[error("issuing cluster certificates: {0}")]
    Certificates(CertError),
    #[error("growing volume claim {name}: {source}")]
    GrowClaim { name: String, source: kube::Error },
    #[error("re-creating StatefulSet {name} for its new volume claim template: {message}")]
    Recreate { name: String, message: String },
    #[error("updating the cluster's krait.dev/rack-binding finalizer: {0}")]
    Finalizer(kube::Error),
}

impl Error {
    /// Short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::Delete { .. } => "delete",
            Self::Status(_) => "status",
            Self::Kafka { .. } => "kafka",
            Self::Restart { .. } => "restart",
            Self::Annotation(_) => "annotation",
            Self::Certificates(_) => "certificates",
            Self::GrowClaim { .. } | Self::Recreate { .. } => "storage",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Everything the cluster owns as seen in the API server.
#[derive(Debug, Default)]
struct Owned {
    service_accounts: Vec<ServiceAccount>,
    secrets: Vec<Secret>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    statefulsets: Vec<StatefulSet>,
    pdbs: Vec<PodDisruptionBudget>,
    pods: Vec<Pod>,
    /// The brokers' volume claims (made by the StatefulSet controller, not owned).
    claims: Vec<PersistentVolumeClaim>,
}

/// Reconciles one cluster.
#[instrument(skip_all, fields(cluster = %cluster.name_any(), namespace = cluster.namespace().unwrap_or_default()))]
pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&cluster, &ctx).await;
    if let Err(error) = &result {
        tell(
            &ctx,
            &cluster,
            &[crate::events::failure(&error.to_string())],
        )
        .await;
    }
    ctx.metrics.record(
        "KafkaCluster",
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    result
}

async fn reconcile_inner(cluster: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes what the cluster owns; only what it cannot own is left.
        rack_binding::release(ctx, cluster).await?;
        return Ok(Action::await_change());
    }
    let now = Time(jiff::Timestamp::now());
    let mut validated = match validate(cluster) {
        Ok(v) => v,
        Err(invalid) => {
            warn!(error = %invalid, "invalid spec");
            let status = invalid_status(cluster, &invalid.to_string(), &now);
            write_and_tell(ctx, cluster, status, None).await?;
            return Ok(Action::await_change());
        }
    };
    let mut owned = read(ctx, &validated.names).await?;
    // A cluster made before listeners were configurable, still serving the plaintext listener
    // it was made with, keeps it until its spec names listeners: switching its clients to TLS
    // and SCRAM unasked would cut them all off.
    if cluster.spec.listeners.is_none()
        && own_statefulset(&validated, &owned).is_some_and(default_listener_of)
    {
        validated.listeners = vec![GenericListener::plaintext(
            PLAINTEXT_NAME,
            DEFAULT_KAFKA_PORT,
        )];
    }
    // Without a StatefulSet to read them from (e.g. one re-created part-way), the voters the
    // cluster formed with are in status.
    let formed_with = cluster
        .status
        .as_ref()
        .map(|s| s.voters.iter().copied().collect::<BTreeSet<i32>>())
        .filter(|v| !v.is_empty());
    let voters = own_statefulset(&validated, &owned)
        .and_then(voters_of)
        .or(formed_with)
        .unwrap_or_else(|| default_voters(&validated.spec));
    // A paused cluster is only observed: its CAs and rebalance stay as status last said.
    let operated = if cluster.spec.paused {
        None
    } else {
        Some(operate(ctx, cluster, &validated, &voters, &mut owned, &now).await?)
    };
    let mut seen = observations(&validated, &owned);
    seen.day2 = operated.as_ref().map(|o| &o.decision);
    seen.storage = operated.as_ref().map(|o| &o.applied.storage);
    seen.pod_monitor = operated.as_ref().map(|o| &o.applied.pod_monitor);
    seen.certificates = operated.as_ref().map(|o| &o.applied.certificates);
    let mut status = cluster_status(cluster, &seen, &now);
    status.voters = operated
        .as_ref()
        .and_then(|o| o.quorum_voters.as_ref())
        .unwrap_or(&voters)
        .iter()
        .copied()
        .collect();
    if let Some(o) = &operated {
        status.cluster_ca = Some(o.applied.cluster_ca.clone());
        status.clients_ca.clone_from(&o.applied.clients_ca);
        status.rebalance.clone_from(&o.decision.rebalance);
    }
    let rebalance_request_done = operated
        .as_ref()
        .is_some_and(|o| o.decision.rebalance_request_done);
    let certificates_busy = operated
        .as_ref()
        .is_some_and(|o| o.applied.certificates.busy());
    let (failure, done) = operated.map_or((None, None), |o| (o.failure, o.done));
    let endpoint = admin_endpoint_of(&validated, &owned);
    let status = with_cluster_id(ctx, status, &endpoint).await;
    // Waiting on cert-manager or on a roll to trust its new CA: no watch tells of it.
    let settled = !certificates_busy
        && status
            .conditions
            .iter()
            .all(|c| c.type_ != "Progressing" || c.status == "False");
    write_and_tell(ctx, cluster, status, done).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    if rebalance_request_done {
        remove_annotation(ctx, cluster, REBALANCE_ANNOTATION).await?;
    }
    Ok(Action::requeue(if settled {
        RESYNC
    } else {
        PROGRESS_RECHECK
    }))
}

/// Writes the cluster's status, then publishes the events of the change (`cluster/events.rs`)
/// from the status before and after and the day-2 action carried out.
async fn write_and_tell(
    ctx: &Context,
    cluster: &KafkaCluster,
    status: KafkaClusterStatus,
    done: Option<(Day2Action, Option<events::Restarted>)>,
) -> Result<(), Error> {
    let (action, restarted) = done.map_or((None, None), |(a, r)| (Some(a), r));
    let notes = events::cluster_events(&events::Seen {
        previous: cluster.status.as_ref(),
        next: &status,
        done: action.as_ref(),
        restarted,
    });
    write_status(&ctx.client, cluster, status)
        .await
        .map_err(Error::Status)?;
    tell(ctx, cluster, &notes).await;
    Ok(())
}

async fn tell(ctx: &Context, cluster: &KafkaCluster, notes: &[Note]) {
    ctx.recorder
        .publish_all(&cluster.object_ref(&()), notes)
        .await;
}

/// What [`operate`] did.
struct Operated {
    decision: day2::Decision,
    applied: Applied,
    /// The day-2 action's failure, reported after status is written.
    failure: Option<Error>,
    /// The day-2 action carried out, and the broker it restarted.
    done: Option<(Day2Action, Option<events::Restarted>)>,
    /// The metadata quorum's voters as the brokers reported them, with the voter change just
    /// made.
    quorum_voters: Option<BTreeSet<i32>>,
}

/// Decides the day-2 step, renews the certificates, applies the objects built for them and
/// carries the step out. An apply failure is recorded in status and returned; a failed action
/// is returned beside the decision, which then says so in `Degraded`.
async fn operate(
    ctx: &Context,
    cluster: &KafkaCluster,
    validated: &ValidatedCluster,
    voters: &BTreeSet<i32>,
    owned: &mut Owned,
    now: &Time,
) -> Result<Operated, Error> {
    let endpoint = admin_endpoint_of(validated, owned);
    let kafka = observe_kafka(ctx, validated, owned, &endpoint).await;
    let mut decision = day2::decide(&day2::Observed {
        cluster: validated,
        statefulset: own_statefulset(validated, owned),
        pods: &owned.pods,
        voters,
        kafka: kafka.as_ref(),
        rebalance_request: annotation(cluster, REBALANCE_ANNOTATION),
        previous: cluster.status.as_ref().and_then(|s| s.rebalance.as_ref()),
    });
    let applied = build_and_apply(ctx, cluster, validated, voters, owned, &decision, now).await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(e) => {
            let status = apply_failed_status(cluster, &e.to_string(), now);
            if let Err(status_error) = write_status(&ctx.client, cluster, status)
                .await
                .map_err(Error::Status)
            {
                warn!(error = %status_error, "could not record the apply failure");
            }
            return Err(e);
        }
    };
    let (failure, done) = match carry_out(ctx, validated, &endpoint, &decision.action).await {
        Ok(Carried::Done) => {
            let restarted = restarted(validated, owned, &decision.action);
            (None, Some((decision.action.clone(), restarted)))
        }
        Ok(Carried::Postponed(waiting)) => {
            decision.progressing = Some(waiting);
            (None, None)
        }
        Err(e) => (Some(e), None),
    };
    if let Some(e) = &failure {
        warn!(error = %e, "day-2 action failed");
        decision.degraded = Some(Decided::new(
            DEGRADED,
            true,
            "ClusterActionFailed",
            e.to_string(),
        ));
        decision.rebalance_request_done = false;
    }
    let mut quorum_voters = match &kafka {
        Some(Ok(state)) if !state.quorum.voters.is_empty() => Some(state.quorum.voters.clone()),
        _ => None,
    };
    if let (Some(voters), Some((action, _))) = (quorum_voters.as_mut(), &done) {
        match action {
            Day2Action::AddVoter(id) => voters.insert(*id),
            Day2Action::RemoveVoter(id) | Day2Action::ReplaceLostVoter(id) => voters.remove(id),
            _ => false,
        };
    }
    Ok(Operated {
        decision,
        applied,
        failure,
        done,
        quorum_voters,
    })
}

/// The broker a restart action restarted, with why, from its pod as it was before.
fn restarted(
    cluster: &ValidatedCluster,
    owned: &Owned,
    action: &Day2Action,
) -> Option<events::Restarted> {
    let Day2Action::RestartPod(id) = action else {
        return None;
    };
    let pod = cluster.names.pod(*id);
    let observed = owned
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod.as_str()))?;
    Some(events::Restarted {
        id: *id,
        why: events::restart_reason(observed, own_statefulset(cluster, owned)),
        namespace: cluster.names.namespace.clone(),
        pod,
    })
}

/// What [`build_and_apply`] did, for status: the cluster and clients CAs, the storage plan,
/// the PodMonitor and the cert-manager Certificates.
struct Applied {
    cluster_ca: CaStatus,
    clients_ca: Option<CaStatus>,
    storage: storage::Plan,
    pod_monitor: PodMonitorState,
    certificates: CertificatesState,
}

/// Renews the certificates, carries out the storage step, builds every object for the decided
/// shape and applies them, the PodMonitor last where its kind is served.
async fn build_and_apply(
    ctx: &Context,
    cluster: &KafkaCluster,
    validated: &ValidatedCluster,
    voters: &BTreeSet<i32>,
    owned: &mut Owned,
    decision: &day2::Decision,
    now: &Time,
) -> Result<Applied, Error> {
    let pki = certificates(
        cluster,
        validated,
        owned,
        decision.statefulset_replicas,
        now,
    )?;
    // A cluster whose brokers run a plaintext cluster port stays so until asked: a roll onto
    // TLS would stop at the first broker, which could no longer talk to the others.
    let cluster_tls = !own_statefulset(validated, owned).is_some_and(plaintext_cluster_of)
        || annotation(cluster, CLUSTER_TLS_ANNOTATION) == Some("enable");
    let mut cluster_ca = cluster_ca_status(validated, &pki);
    if !cluster_tls {
        "NotInUse".clone_into(&mut cluster_ca.state);
    }
    let operator_password = listeners::uses_scram(&validated.listeners).then(|| {
        stored_password(validated, &owned.secrets).unwrap_or_else(|| {
            info!("generating the operator's SCRAM password");
            generate_password()
        })
    });
    let clients_ca = clients_ca(cluster, validated, owned, now)?;
    let clients_ca_status = clients_ca
        .as_ref()
        .map(|ca| ca_status(validated.names.clients_ca_cert_secret(), ca));
    let shape = Shape {
        replicas: decision.statefulset_replicas,
        voters: voters.clone(),
        restart: annotation(cluster, RESTART_ANNOTATION).map(str::to_string),
        pki: Some(pki),
        operator_password,
        clients_ca,
        cluster_tls,
        rack: ctx.rack.clone(),
    };
    // A new cluster whose issuer has not signed every broker's certificate yet waits for it:
    // its brokers could not start without them.
    let hold_statefulset = own_statefulset(validated, owned).is_none()
        && matches!(&shape.pki, Some(ClusterPki::Issuer(p)) if !p.pending.is_empty());
    // What cert-manager issued so far; `NotServed` instead once discovery says so below.
    let issued = match (&validated.spec.cluster_ca.issuer_ref, &shape.pki) {
        (Some(issuer), Some(ClusterPki::Issuer(p))) => CertificatesState::applied(issuer, p),
        _ => CertificatesState::Disabled,
    };
    let statefulset = own_statefulset(validated, owned);
    let storage = volumes::plan(ctx, validated, statefulset, &owned.claims).await?;
    volumes::grow_claims(ctx, validated, &storage).await?;
    let mut built = validated.clone();
    built.spec.storage = storage.effective.clone();
    let desired = build(&built, &shape);
    // Before the StatefulSet: the brokers' init container reads the Node with it.
    rack_binding::converge(
        ctx,
        cluster,
        &validated.names,
        desired.rack_binding.as_ref(),
    )
    .await?;
    let served = cert_manager::converge(ctx, &built, &desired.certificates).await?;
    let certificates = match issued {
        CertificatesState::Applied { .. } if !served => CertificatesState::NotServed,
        issued => issued,
    };
    apply(
        ctx,
        &built,
        &desired,
        owned,
        storage.recreate,
        hold_statefulset,
    )
    .await?;
    let pod_monitor = monitoring::converge(ctx, &built, desired.pod_monitor.as_ref()).await?;
    Ok(Applied {
        cluster_ca,
        clients_ca: clients_ca_status,
        storage,
        pod_monitor,
        certificates,
    })
}

/// The clients CA where a listener takes client certificates: the stored one, renewed where
/// due like the cluster CA (`cluster/pki/rotation.rs`), valid as long as the cluster CA's
/// certificates are (`spec.clusterCa`).
fn clients_ca(
    cluster: &KafkaCluster,
    validated: &ValidatedCluster,
    owned: &Owned,
    now: &Time,
) -> Result<Option<Ca>, Error> {
    if !listeners::uses_mtls(&validated.listeners) {
        return Ok(None);
    }
    let running = own_statefulset(validated, owned).and_then(|s| s.spec.replicas);
    let policy = ca_policy(
        validated,
        now,
        running.and_then(|running| {
            pki::clients_trusted_by_all(&validated.names, &owned.pods, running)
        }),
        annotation(cluster, RENEW_CLIENTS_CA_ANNOTATION),
    );
    let stored = stored_clients_ca(&validated.names, &owned.secrets);
    let mut issued = Vec::new();
    let ca = pki::rotation::rotate(
        CaKind::Clients,
        &validated.names,
        &stored,
        &policy,
        &mut issued,
    )
    .map_err(Error::Certificates)?;
    if !issued.is_empty() {
        info!(issued = ?issued, "issued the clients CA");
    }
    Ok(Some(ca))
}

/// A CA's policy from `spec.clusterCa`, now.
fn ca_policy(
    cluster: &ValidatedCluster,
    now: &Time,
    trusted_by_all: Option<i64>,
    renew_requested: Option<&str>,
) -> CaPolicy {
    let ca = &cluster.spec.cluster_ca;
    CaPolicy {
        validity_days: ca.validity_days,
        renewal_days: ca.renewal_days,
        now: now.0.as_second(),
        trusted_by_all,
        renew_requested: renew_requested.map(str::to_string),
    }
}

/// The PKI to store: what the Secrets hold, renewed where due (`cluster/pki`), or what a
/// cert-manager issuer signed (`pki/issuer.rs`). Every broker the StatefulSet runs or will run
/// gets a certificate.
fn certificates(
    cluster: &KafkaCluster,
    validated: &ValidatedCluster,
    owned: &Owned,
    replicas: i32,
    now: &Time,
) -> Result<ClusterPki, Error> {
    let running = own_statefulset(validated, owned).and_then(|s| s.spec.replicas);
    let brokers = 0..replicas
        .max(validated.spec.replicas)
        .max(running.unwrap_or(0));
    let trusted_by_all =
        running.and_then(|running| pki::trusted_by_all(&validated.names, &owned.pods, running));
    if validated.spec.cluster_ca.issuer_ref.is_some() {
        let stored = stored_issued(validated, brokers.clone(), &owned.secrets);
        let want = IssuerWant {
            names: &validated.names,
            brokers: brokers.collect(),
            external_hosts: listeners::external_hosts(&validated.listeners),
            now: now.0.as_second(),
            trusted_by_all,
            forming: own_statefulset(validated, owned).is_none(),
        };
        let pki = issuer::plan(&stored, &want);
        if !pki.taken.is_empty() {
            info!(taken = ?pki.taken, "took certificates from cert-manager");
        }
        return Ok(ClusterPki::Issuer(pki));
    }
    let want = pki::Want {
        names: &validated.names,
        brokers: brokers.collect(),
        policy: ca_policy(
            validated,
            now,
            trusted_by_all,
            annotation(cluster, RENEW_CLUSTER_CA_ANNOTATION),
        ),
        external_hosts: listeners::external_hosts(&validated.listeners),
    };
    let pki =
        pki::renew(&stored_pki(validated, &owned.secrets), &want).map_err(Error::Certificates)?;
    if !pki.issued.is_empty() {
        info!(issued = ?pki.issued, "issued cluster certificates");
    }
    Ok(ClusterPki::Operator(pki))
}

/// `status.clusterCa`: the operator's CA, or with an issuer, the trust bundle's newest
/// generation and the first broker certificate to expire.
fn cluster_ca_status(validated: &ValidatedCluster, pki: &ClusterPki) -> CaStatus {
    let secret_name = validated.names.cluster_ca_cert_secret();
    match pki {
        ClusterPki::Operator(pki) => ca_status(secret_name, &pki.authority),
        ClusterPki::Issuer(pki) => CaStatus {
            secret_name,
            generation: pki.trust_generation,
            not_after: jiff::Timestamp::from_second(pki.not_after)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            state: if !pki.pending.is_empty() {
                "Issuing"
            } else if !pki.waiting.is_empty() {
                "Renewing"
            } else {
                "Ready"
            }
            .into(),
        },
    }
}

fn ca_status(secret_name: String, authority: &Ca) -> CaStatus {
    let not_after = jiff::Timestamp::from_second(authority.not_after)
        .map(|t| t.to_string())
        .unwrap_or_default();
    CaStatus {
        secret_name,
        generation: authority.ca.generation,
        not_after,
        state: if authority.renewing() {
            "Renewing"
        } else {
            "Ready"
        }
        .into(),
    }
}

fn annotation<'a>(cluster: &'a KafkaCluster, key: &str) -> Option<&'a str> {
    cluster.annotations().get(key).map(String::as_str)
}

fn own_statefulset<'a>(cluster: &ValidatedCluster, owned: &'a Owned) -> Option<&'a StatefulSet> {
    owned
        .statefulsets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(&cluster.names.statefulset()))
}

/// The running cluster's state, when there is a broker to ask: `None` before any pod is
/// Ready, the reason when the brokers cannot be read.
async fn observe_kafka(
    ctx: &Context,
    cluster: &ValidatedCluster,
    owned: &Owned,
    endpoint: &AdminEndpoint,
) -> Option<Result<ClusterState, String>> {
    let any_ready = owned.pods.iter().any(|p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if own_statefulset(cluster, owned).is_none() || !any_ready {
        return None;
    }
    let state = ctx.kafka.cluster_admin(endpoint).observe().await;
    if let Err(error) = &state {
        warn!(%error, "cannot read the cluster's state");
    }
    Some(state.map_err(|e| e.to_string()))
}

/// What became of the day-2 action.
enum Carried {
    Done,
    /// The API server said "not now" (a PodDisruptionBudget refused an eviction): not a
    /// failure; `Progressing` says what the step waits on and the reconcile is requeued.
    Postponed(Decided),
}

/// Carries out the day-2 action after the objects are applied.
async fn carry_out(
    ctx: &Context,
    cluster: &ValidatedCluster,
    endpoint: &AdminEndpoint,
    action: &Day2Action,
) -> Result<Carried, Error> {
    let kafka = |action| move |source| Error::Kafka { action, source };
    let done = match action {
        Day2Action::None => Ok(()),
        Day2Action::Reassign { moves, throttle } => {
            let admin = ctx.kafka.cluster_admin(endpoint);
            if let Some(rate) = throttle {
                info!(rate, "setting the replication throttle");
                admin
                    .set_throttle(Some(*rate))
                    .await
                    .map_err(kafka("setting the replication throttle"))?;
            }
            info!(partitions = moves.len(), "starting reassignments");
            admin
                .reassign(moves.clone())
                .await
                .map_err(kafka("starting reassignments"))
        }
        Day2Action::ClearThrottle => {
            info!("clearing the replication throttle");
            ctx.kafka
                .cluster_admin(endpoint)
                .set_throttle(None)
                .await
                .map_err(kafka("clearing the replication throttle"))
        }
        Day2Action::Unregister(brokers) => unregister(ctx, endpoint, brokers).await,
        Day2Action::ReplaceLostVoter(id) => {
            warn!(
                broker = id,
                "a voter's data directory was lost: removing the voter and restarting its broker"
            );
            ctx.kafka
                .cluster_admin(endpoint)
                .remove_voter(*id)
                .await
                .map_err(kafka("removing a voter whose data directory was lost"))?;
            return restart_pod(ctx, cluster, *id).await;
        }
        Day2Action::AddVoter(id) => {
            info!(broker = id, "adding a metadata quorum voter");
            ctx.kafka
                .cluster_admin(endpoint)
                .add_voter(*id)
                .await
                .map_err(kafka("adding a metadata quorum voter"))
        }
        Day2Action::RemoveVoter(id) => {
            info!(broker = id, "removing a metadata quorum voter");
            ctx.kafka
                .cluster_admin(endpoint)
                .remove_voter(*id)
                .await
                .map_err(kafka("removing a metadata quorum voter"))
        }
        Day2Action::RestartPod(id) => return restart_pod(ctx, cluster, *id).await,
    };
    done.map(|()| Carried::Done)
}

async fn unregister(
    ctx: &Context,
    endpoint: &AdminEndpoint,
    brokers: &BTreeSet<i32>,
) -> Result<(), Error> {
    let admin = ctx.kafka.cluster_admin(endpoint);
    for &id in brokers {
        info!(broker = id, "unregistering broker");
        admin.unregister(id).await.map_err(|source| Error::Kafka {
            action: "unregistering a removed broker",
            source,
        })?;
    }
    Ok(())
}

/// Restarts one broker under `OnDelete` by evicting its pod (policy/v1 Eviction), so the API
/// server holds the restart to every PodDisruptionBudget covering the pod, as it does a node
/// drain: the broker stops on SIGTERM and the StatefulSet controller recreates the pod from
/// the current template. A budget that allows no disruption now answers 429 Too Many
/// Requests: the roll waits (`WaitingForDisruptionBudget`) and is looked at again soon.
async fn restart_pod(ctx: &Context, cluster: &ValidatedCluster, id: i32) -> Result<Carried, Error> {
    let name = cluster.names.pod(id);
    info!(pod = %name, "restarting broker: evicting its pod");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &cluster.names.namespace);
    match api.evict(&name, &EvictParams::default()).await {
        Ok(_) => Ok(Carried::Done),
        // Gone already: it is being recreated.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Carried::Done),
        Err(kube::Error::Api(e)) if e.code == 429 => {
            info!(pod = %name, message = %e.message, "eviction refused by a disruption budget");
            Ok(Carried::Postponed(Decided::new(
                PROGRESSING,
                true,
                WAITING_FOR_DISRUPTION_BUDGET,
                format!(
                    "restarting broker {id} waits on a PodDisruptionBudget: {}",
                    e.message
                ),
            )))
        }
        Err(source) => Err(Error::Restart { name, source }),
    }
}

/// Removes a handled one-shot annotation with a merge patch, which leaves every other field
/// (and their managers) alone.
async fn remove_annotation(ctx: &Context, cluster: &KafkaCluster, key: &str) -> Result<(), Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {key: null}}});
    merge_patch(ctx, cluster, &patch)
        .await
        .map_err(Error::Annotation)
}

/// A JSON merge patch of the KafkaCluster object itself (its metadata: annotations, finalizers).
pub(super) async fn merge_patch(
    ctx: &Context,
    cluster: &KafkaCluster,
    patch: &serde_json::Value,
) -> Result<(), kube::Error> {
    let api: Api<KafkaCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map(drop)
}

fn observations<'a>(cluster: &'a ValidatedCluster, owned: &'a Owned) -> Observations<'a> {
    Observations {
        names: &cluster.names,
        replicas: cluster.spec.replicas,
        listeners: &cluster.listeners,
        statefulset: owned
            .statefulsets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&cluster.names.statefulset())),
        pods: &owned.pods,
        paused: cluster.spec.paused,
        day2: None,
        storage: None,
        pod_monitor: None,
        certificates: None,
    }
}

/// Asks the brokers for their cluster id once all are ready, until it is known.
async fn with_cluster_id(
    ctx: &Context,
    mut status: KafkaClusterStatus,
    endpoint: &AdminEndpoint,
) -> KafkaClusterStatus {
    let ready = status.brokers.iter().all(|b| b.ready) && !status.brokers.is_empty();
    if status.cluster_id.is_none() && ready {
        status.cluster_id = ctx.kafka.cluster_id(endpoint).await;
    }
    status
}

/// The operator's admin connection to the cluster, with the Secrets it owns as last read.
fn admin_endpoint_of(cluster: &ValidatedCluster, owned: &Owned) -> AdminEndpoint {
    let listener = AdminListener::of(&cluster.names, &cluster.listeners);
    admin_endpoint(&cluster.names, &listener, &owned.secrets)
}

/// A password for the operator's SCRAM user: 32 characters from 62, about 190 bits.
fn generate_password() -> String {
    use rand::Rng as _;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn list<K>(ctx: &Context, ns: &str, selector: &str) -> Result<Vec<K>, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|source| Error::Read {
            kind: K::KIND,
            source,
        })
}

/// Step 1: everything the cluster owns, found by the operator's labels.
async fn read(ctx: &Context, names: &ClusterNames) -> Result<Owned, Error> {
    let (ns, sel) = (names.namespace.as_str(), names.owned_selector());
    Ok(Owned {
        service_accounts: list(ctx, ns, &sel).await?,
        secrets: list(ctx, ns, &sel).await?,
        config_maps: list(ctx, ns, &sel).await?,
        services: list(ctx, ns, &sel).await?,
        statefulsets: list(ctx, ns, &sel).await?,
        pdbs: list(ctx, ns, &sel).await?,
        pods: list(ctx, ns, &sel).await?,
        claims: list(ctx, ns, &names.broker_selector()).await?,
    })
}

/// Step 4: applies in order, then deletes leftovers. `owned` is updated with what the API
/// server returned, so the status describes the world after this reconcile. With
/// `recreate_statefulset`, the StatefulSet is deleted (pods orphaned) before it is applied.
async fn apply(
    ctx: &Context,
    cluster: &ValidatedCluster,
    desired: &DesiredObjects,
    owned: &mut Owned,
    recreate_statefulset: bool,
    hold_statefulset: bool,
) -> Result<(), Error> {
    use std::slice::from_ref as one;
    let ns = cluster.names.namespace.as_str();
    let (sa, cm) = (one(&desired.service_account), one(&desired.config_map));
    let (sts, pdb) = (one(&desired.statefulset), one(&desired.pdb));
    let sts = if hold_statefulset { &[] } else { sts };
    apply_kind(ctx, ns, sa, &mut owned.service_accounts).await?;
    apply_kind(ctx, ns, &desired.secrets, &mut owned.secrets).await?;
    apply_kind(ctx, ns, cm, &mut owned.config_maps).await?;
    apply_kind(ctx, ns, &desired.services, &mut owned.services).await?;
    if recreate_statefulset && let Some(existing) = own_statefulset(cluster, owned).cloned() {
        volumes::orphan_statefulset(ctx, ns, &existing).await?;
        owned
            .statefulsets
            .retain(|s| s.name_any() != existing.name_any());
    }
    apply_kind(ctx, ns, sts, &mut owned.statefulsets).await?;
    apply_kind(ctx, ns, pdb, &mut owned.pdbs).await?;
    delete_leftovers(ctx, cluster, sa, &mut owned.service_accounts).await?;
    delete_leftovers(ctx, cluster, cm, &mut owned.config_maps).await?;
    delete_leftovers(ctx, cluster, &desired.services, &mut owned.services).await?;
    delete_leftovers(ctx, cluster, sts, &mut owned.statefulsets).await?;
    delete_leftovers(ctx, cluster, pdb, &mut owned.pdbs).await
}

/// Server-side applies each desired object that is not [`up_to_date`].
async fn apply_kind<K>(
    ctx: &Context,
    ns: &str,
    desired: &[K],
    observed: &mut Vec<K>,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    for object in desired {
        let name = object.name_any();
        let existing = observed.iter().position(|o| o.name_any() == name);
        if existing.is_some_and(|i| up_to_date(&observed[i], object)) {
            continue;
        }
        info!(kind = K::KIND, %name, "applying");
        let applied = super::force_apply(&api, K::KIND, &name, object).await?;
        match existing {
            Some(i) => observed[i] = applied,
            None => observed.push(applied),
        }
    }
    Ok(())
}

/// The hash says the build has not changed since the last apply; the comparison says nobody
/// changed the object since (e.g. `kubectl scale`), which the operator reverts.
pub(super) fn up_to_date<K: Resource + Serialize>(observed: &K, desired: &K) -> bool {
    if hash_of(observed) != hash_of(desired) {
        return false;
    }
    match (
        serde_json::to_value(observed),
        serde_json::to_value(desired),
    ) {
        (Ok(o), Ok(d)) => contains(&o, &d),
        _ => false,
    }
}

/// Deletes observed objects of a kind that this cluster controls but no longer wants (e.g.
/// external Services after the external listener is removed). Objects owned by anything
/// else are left alone even if they carry the labels.
async fn delete_leftovers<K>(
    ctx: &Context,
    cluster: &ValidatedCluster,
    desired: &[K],
    observed: &mut Vec<K>,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &cluster.names.namespace);
    let controlled = |o: &K| {
        o.owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == cluster.uid)
    };
    let leftovers: Vec<String> = observed
        .iter()
        .filter(|o| controlled(o) && !desired.iter().any(|d| d.name_any() == o.name_any()))
        .map(ResourceExt::name_any)
        .collect();
    for name in leftovers {
        info!(kind = K::KIND, %name, "deleting leftover");
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            // Already gone: the goal is reached.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(Error::Delete {
                    kind: K::KIND,
                    name,
                    source,
                });
            }
        }
        observed.retain(|o| o.name_any() != name);
    }
    Ok(())
}

/// What the controller does after a failed reconcile: retry soon, with the error counted.
pub fn error_policy(_cluster: Arc<KafkaCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(%error, "cluster reconcile failed");
    Action::requeue(Duration::from_secs(30))
}
