//! The Kubernetes side of a topic reconcile: a finalizer, the cluster lookup, the one-owner
//! rule for a Kafka topic name, the claim recorded before creating, and status. The Kafka side
//! is [`super::plan::sync`], then, when the replication factor differs from the spec (or a
//! change of it is under way), one step of [`super::replication::next_step`]. Level-triggered:
//! every reconcile re-reads the topic from Kafka, so a config changed behind the operator's
//! back is set back on the next pass.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff;
use krait_crd::KafkaTopic;
use krait_crd::topic::{DeletionPolicy, KafkaTopicStatus};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::plan::{DesiredTopic, sync};
use super::replication::{self, ReplicationStep};
use crate::cluster_admin::ClusterAdminError;
use crate::cluster_ref;
use crate::conditions::{Decided, READY, find, merge};
use crate::context::Context;
use crate::events::Note;
use crate::finalized::{self, ReconcileError};
use crate::kafka::{AdminEndpoint, AdminError};
use crate::status::write_status;

/// Finalizer that lets the operator delete the Kafka topic before the resource goes.
pub const FINALIZER: &str = "krait.dev/topic";
/// How often a settled topic is compared with Kafka again (drift revert).
const RESYNC: Duration = Duration::from_secs(120);
/// How soon a topic waiting for something (its cluster, a free name) is looked at again.
const WAIT: Duration = Duration::from_secs(30);
/// How soon a topic whose partitions are moving to a new replication factor is looked at again.
const MOVING: Duration = Duration::from_secs(10);
/// The Ready reason while partitions move to a new replication factor.
const CHANGING_REPLICATION: &str = "ReplicationFactorChanging";

/// A failed step of a topic reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] AdminError),
    #[error("changing the replication factor: {0}")]
    Replication(#[from] ClusterAdminError),
    #[error("writing status: {0}")]
    Status(kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Kafka(_) | Self::Replication(_) => "kafka",
            Self::Status(_) => "status",
            Self::Finalizer(_) => "finalizer",
        }
    }

    fn finalizer(why: String) -> Self {
        Self::Finalizer(why)
    }
}

/// Reconciles one topic.
#[instrument(skip_all, fields(topic = %topic.name_any(), namespace = topic.namespace().unwrap_or_default()))]
pub async fn reconcile(topic: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ctx: &Context = &ctx;
    finalized::reconcile(
        topic,
        ctx,
        FINALIZER,
        "KafkaTopic",
        |topic| async move { apply(&topic, ctx).await },
        |topic| async move { cleanup(&topic, ctx).await },
    )
    .await
}

/// What the topic's cluster looks like from here.
enum ClusterState {
    Absent,
    Deleting,
    Present {
        /// The operator's admin connection to the cluster (`access.rs`).
        endpoint: AdminEndpoint,
        /// `spec.rebalance.throttleBytesPerSecond`: also throttles replicas a replication
        /// factor change adds (the cluster reconciler clears it once nothing moves).
        throttle: Option<i64>,
    },
}

async fn cluster_state(topic: &KafkaTopic, ctx: &Context) -> Result<ClusterState, Error> {
    let ns = topic.namespace().unwrap_or_default();
    let state = cluster_ref::cluster_state(ctx, &ns, &topic.spec.cluster_ref)
        .await
        .map_err(|(what, source)| Error::Read { what, source })?;
    Ok(match state {
        cluster_ref::ClusterState::Absent => ClusterState::Absent,
        cluster_ref::ClusterState::Deleting => ClusterState::Deleting,
        cluster_ref::ClusterState::Present { endpoint, cluster } => ClusterState::Present {
            endpoint,
            throttle: cluster.spec.rebalance.throttle_bytes_per_second,
        },
    })
}

/// The other `KafkaTopic` that owns this topic name in the same cluster, if any: the oldest
/// one (then the smallest resource name) wins, so every reconcile agrees on it.
async fn name_owner(topic: &KafkaTopic, ctx: &Context) -> Result<Option<String>, Error> {
    let api: Api<KafkaTopic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: "KafkaTopics",
            source,
        })?;
    let key = |t: &KafkaTopic| (t.metadata.creation_timestamp.clone(), t.name_any());
    let owner = all
        .items
        .iter()
        .filter(|t| {
            t.spec.cluster_ref == topic.spec.cluster_ref && t.topic_name() == topic.topic_name()
        })
        .filter(|t| t.meta().deletion_timestamp.is_none() || t.name_any() == topic.name_any())
        .min_by_key(|t| key(t))
        .map(ResourceExt::name_any);
    Ok(owner.filter(|o| *o != topic.name_any()))
}

fn desired(topic: &KafkaTopic) -> DesiredTopic {
    DesiredTopic {
        name: topic.topic_name().to_string(),
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        config: topic.spec.config.clone(),
    }
}

async fn apply(topic: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let (endpoint, throttle) = match cluster_state(topic, ctx).await? {
        ClusterState::Present { endpoint, throttle } => (endpoint, throttle),
        ClusterState::Absent | ClusterState::Deleting => {
            let message = format!(
                "KafkaCluster {} not found or being deleted",
                topic.spec.cluster_ref
            );
            write(ctx, topic, not_ready(topic, "ClusterNotFound", message)).await?;
            return Ok(Action::requeue(WAIT));
        }
    };
    if let Some(owner) = name_owner(topic, ctx).await? {
        let message = format!(
            "KafkaTopic {owner} already manages topic {}",
            topic.topic_name()
        );
        write(ctx, topic, not_ready(topic, "TopicNameConflict", message)).await?;
        return Ok(Action::requeue(WAIT));
    }
    match sync_kafka(topic, ctx, &endpoint, throttle).await {
        Ok(true) => Ok(Action::requeue(RESYNC)),
        Ok(false) => Ok(Action::requeue(MOVING)),
        Err(e) => {
            // Say why in the status too; the error itself makes the controller retry.
            let status = not_ready(topic, "KafkaError", e.to_string());
            if let Err(status_error) = write_status(&ctx.client, topic, status)
                .await
                .map_err(Error::Status)
            {
                warn!(error = %status_error, "could not record the Kafka failure");
            }
            Err(e)
        }
    }
}

/// The Kafka side of an apply: claim, sync, the replication factor, and the resulting status.
/// True when the topic is settled (nothing moving).
async fn sync_kafka(
    topic: &KafkaTopic,
    ctx: &Context,
    endpoint: &AdminEndpoint,
    throttle: Option<i64>,
) -> Result<bool, Error> {
    let admin = ctx.kafka.topic_admin(endpoint)?;
    let wanted = desired(topic);
    let mut claimed = topic.status.as_ref().is_some_and(|s| s.created_by_operator);
    let mut synced = sync(admin.as_ref(), &wanted, claimed).await?;
    if synced.topic.is_none() && !claimed {
        // Record the claim before creating, so a crash right after CreateTopics still leaves
        // the topic marked as the operator's (and deletable under deletionPolicy Delete).
        let mut status = topic.status.clone().unwrap_or_default();
        status.created_by_operator = true;
        write_status(&ctx.client, topic, status.clone())
            .await
            .map_err(Error::Status)?;
        claimed = true;
        info!(topic = %wanted.name, "creating");
        synced = sync(admin.as_ref(), &wanted, true).await?;
    }
    let mut status = topic.status.clone().unwrap_or_default();
    status.created_by_operator = claimed;
    status.topic_name = Some(wanted.name.clone());
    status.partitions = synced.topic.as_ref().map(|t| t.partitions);
    status.replication_factor = synced.topic.as_ref().map(|t| t.replication_factor);
    status.topic_id = match &synced.topic {
        Some(_) => admin.topic_id(&wanted.name).await.or(status.topic_id),
        None => None,
    };
    let replication = match (wanted.replication_factor, &synced.topic) {
        (Some(want), Some(observed))
            if observed.replication_factor != want || replication_changing(topic) =>
        {
            change_replication_factor(ctx, endpoint, throttle, &wanted.name, want).await?
        }
        _ => None,
    };
    let settled = replication
        .as_ref()
        .is_none_or(|d| d.reason != CHANGING_REPLICATION);
    let decided = match (synced.plan.refusals.first(), replication) {
        (Some(refusal), _) => Decided::new(READY, false, refusal.reason(), refusal.to_string()),
        (None, Some(replication)) => replication,
        (None, None) => Decided::new(READY, true, "Synced", "the topic matches the spec"),
    };
    let generation = topic.metadata.generation;
    status.observed_generation = generation;
    status.conditions = merge(&status.conditions, &[decided], generation, &now());
    write(ctx, topic, status).await?;
    Ok(settled)
}

/// Whether the last reconcile left partitions moving to a new replication factor. The described
/// replica counts cannot tell: during a reassignment Metadata lists the union of the old and new
/// replicas, which can match the spec before the added replicas are in sync.
fn replication_changing(topic: &KafkaTopic) -> bool {
    topic.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == CHANGING_REPLICATION)
    })
}

/// One step towards `want` replicas per partition: `None` once there, otherwise the Ready
/// condition saying what is moving or why it is refused.
async fn change_replication_factor(
    ctx: &Context,
    endpoint: &AdminEndpoint,
    throttle: Option<i64>,
    name: &str,
    want: i32,
) -> Result<Option<Decided>, Error> {
    let admin = ctx.kafka.cluster_admin(endpoint);
    let state = admin.observe().await?;
    let moving = |message: String| Decided::new(READY, false, CHANGING_REPLICATION, message);
    Ok(match replication::next_step(name, want, &state) {
        ReplicationStep::Done => None,
        ReplicationStep::Moving { partitions } => Some(moving(format!(
            "{partitions} partition(s) moving to replication factor {want}"
        ))),
        ReplicationStep::Reassign(moves) => {
            if let Some(rate) = throttle.and_then(|t| u64::try_from(t).ok()) {
                admin.set_throttle(Some(rate)).await?;
            }
            info!(
                topic = name,
                partitions = moves.len(),
                want,
                "changing the replication factor"
            );
            let started = moves.len();
            admin.reassign(moves).await?;
            Some(moving(format!(
                "started moving {started} partition(s) to replication factor {want}"
            )))
        }
        ReplicationStep::Refused(why) => Some(Decided::new(
            READY,
            false,
            "ReplicationFactorChangeRefused",
            why,
        )),
    })
}

/// Deletes the Kafka topic when the policy says so and the operator created it. Never blocks
/// for long: with the cluster gone or being deleted (e.g. namespace deletion) there is nothing
/// to delete from, and the finalizer goes.
async fn cleanup(topic: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let claimed = topic.status.as_ref().is_some_and(|s| s.created_by_operator);
    if topic.spec.deletion_policy != DeletionPolicy::Delete || !claimed {
        return Ok(Action::await_change());
    }
    let ClusterState::Present { endpoint, .. } = cluster_state(topic, ctx).await? else {
        info!("cluster gone or being deleted; releasing the topic without deleting it");
        return Ok(Action::await_change());
    };
    if name_owner(topic, ctx).await?.is_some() {
        // Another resource manages this name; deleting would take its topic away.
        return Ok(Action::await_change());
    }
    info!(topic = topic.topic_name(), "deleting");
    ctx.kafka
        .topic_admin(&endpoint)?
        .delete(topic.topic_name())
        .await?;
    Ok(Action::await_change())
}

/// Writes the topic's status, and tells of a new `Ready` reason in an event: the topic in sync
/// or moving to a new replication factor, or (a warning) what it is refused or waits on. A
/// Kafka failure is told by the reconcile's own failure event.
async fn write(ctx: &Context, topic: &KafkaTopic, status: KafkaTopicStatus) -> Result<(), Error> {
    let note = ready_event(topic.status.as_ref(), &status);
    write_status(&ctx.client, topic, status)
        .await
        .map_err(Error::Status)?;
    if let Some(note) = note {
        ctx.recorder
            .publish_all(&topic.object_ref(&()), &[note])
            .await;
    }
    Ok(())
}

fn ready_event(before: Option<&KafkaTopicStatus>, after: &KafkaTopicStatus) -> Option<Note> {
    let now = find(&after.conditions, READY)?;
    let was = before.and_then(|s| find(&s.conditions, READY));
    if was.is_some_and(|w| w.reason == now.reason) || now.reason == "KafkaError" {
        return None;
    }
    Some(
        if now.status == "True" || now.reason == CHANGING_REPLICATION {
            Note::normal(&now.reason, "Reconcile", &now.message)
        } else {
            Note::warning(&now.reason, "Reconcile", &now.message)
        },
    )
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn not_ready(topic: &KafkaTopic, reason: &'static str, message: String) -> KafkaTopicStatus {
    let mut status = topic.status.clone().unwrap_or_default();
    let generation = topic.metadata.generation;
    status.observed_generation = generation;
    status.topic_name = Some(topic.topic_name().to_string());
    status.conditions = merge(
        &status.conditions,
        &[Decided::new(READY, false, reason, message)],
        generation,
        &now(),
    );
    status
}

/// What the controller does after a failed reconcile: retry soon.
pub fn error_policy(_topic: Arc<KafkaTopic>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(%error, "topic reconcile failed");
    Action::requeue(WAIT)
}
