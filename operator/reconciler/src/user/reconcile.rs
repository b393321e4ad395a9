//! The Kubernetes side of a user reconcile: a finalizer, the cluster lookup, the one-owner rule
//! for a Kafka user name, the password's Secret (generated once, or the one the spec names),
//! and status. The Kafka side sets the SCRAM-SHA-512 credential when the user has none or the
//! password's Secret changed, and brings the principal's ACLs to exactly the spec's. Level-
//! triggered: every reconcile re-reads the ACLs, so one added or removed behind the operator's
//! back is put right on the next pass.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff;
use krait_crd::user::{KafkaUserStatus, UserAuthenticationType};
use krait_crd::{KafkaCluster, KafkaUser};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::certificate::{self, CertificateError};
use super::plan::{
    Credential, PasswordRef, credentials_secret, desired_acls, diff_acls, invalid_acl, owned_by,
    password_ref, principal, reserved_name, secret_text,
};
use crate::cluster_ref::{self, ClusterState};
use crate::conditions::{Decided, READY, find, merge};
use crate::context::Context;
use crate::events::Note;
use crate::finalized::{self, ReconcileError};
use crate::kafka::AdminEndpoint;
use crate::names::MANAGER;
use crate::status::write_status;
use crate::user_admin::UserAdminError;

/// Finalizer that lets the operator remove the user and its ACLs before the resource goes.
pub const FINALIZER: &str = "krait.dev/user";
/// How often a settled user is compared with Kafka again (ACL drift revert).
const RESYNC: Duration = Duration::from_secs(120);
/// How soon a user waiting for something (its cluster, its password's Secret) is looked at again.
const WAIT: Duration = Duration::from_secs(30);

/// A failed step of a user reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    #[error("writing the credentials Secret: {0}")]
    WriteSecret(kube::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] UserAdminError),
    #[error("the user's certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error("writing status: {0}")]
    Status(kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::WriteSecret(_) => "secret",
            Self::Kafka(_) => "kafka",
            Self::Certificate(_) => "certificate",
            Self::Status(_) => "status",
            Self::Finalizer(_) => "finalizer",
        }
    }

    fn finalizer(why: String) -> Self {
        Self::Finalizer(why)
    }
}

/// Reconciles one user.
#[instrument(skip_all, fields(user = %user.name_any(), namespace = user.namespace().unwrap_or_default()))]
pub async fn reconcile(user: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ctx: &Context = &ctx;
    finalized::reconcile(
        user,
        ctx,
        FINALIZER,
        "KafkaUser",
        |user| async move { apply(&user, ctx).await },
        |user| async move { cleanup(&user, ctx).await },
    )
    .await
}

/// The user's cluster and the operator's admin connection to it; `None` when the cluster is
/// gone or being deleted.
async fn cluster_of(
    user: &KafkaUser,
    ctx: &Context,
) -> Result<Option<(AdminEndpoint, Box<KafkaCluster>)>, Error> {
    let ns = user.namespace().unwrap_or_default();
    let state = cluster_ref::cluster_state(ctx, &ns, &user.spec.cluster_ref)
        .await
        .map_err(|(what, source)| Error::Read { what, source })?;
    Ok(match state {
        ClusterState::Present { endpoint, cluster } => Some((endpoint, cluster)),
        ClusterState::Absent | ClusterState::Deleting => None,
    })
}

/// The other `KafkaUser` that owns this user name in the same cluster, if any: the oldest one
/// (then the smallest resource name) wins, so every reconcile agrees on it.
async fn name_owner(user: &KafkaUser, ctx: &Context) -> Result<Option<String>, Error> {
    let api: Api<KafkaUser> =
        Api::namespaced(ctx.client.clone(), &user.namespace().unwrap_or_default());
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: "KafkaUsers",
            source,
        })?;
    let key = |u: &KafkaUser| (u.metadata.creation_timestamp.clone(), u.name_any());
    let owner = all
        .items
        .iter()
        .filter(|u| {
            u.spec.cluster_ref == user.spec.cluster_ref && u.user_name() == user.user_name()
        })
        .filter(|u| u.meta().deletion_timestamp.is_none() || u.name_any() == user.name_any())
        .min_by_key(|u| key(u))
        .map(ResourceExt::name_any);
    Ok(owner.filter(|o| *o != user.name_any()))
}

/// Reads the password's Secret; for a generated password, creates the Secret the first time.
async fn password(user: &KafkaUser, ctx: &Context, at: &PasswordRef) -> Result<Credential, Error> {
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &user.namespace().unwrap_or_default());
    let secret = api
        .get_opt(&at.secret)
        .await
        .map_err(|source| Error::Read {
            what: "Secret",
            source,
        })?;
    let found = |s: &Secret, password: String| Credential::Password {
        password,
        version: s.metadata.resource_version.clone().unwrap_or_default(),
    };
    match (secret, at.generated) {
        (Some(s), true) if !owned_by(&s, user) => Ok(Credential::Missing {
            reason: "SecretConflict",
            message: format!(
                "Secret {} exists and was not made for this KafkaUser; name the password's Secret in spec.authentication.password",
                at.secret
            ),
        }),
        (Some(s), generated) => match secret_text(&s, &at.key).filter(|p| !p.is_empty()) {
            Some(p) => Ok(found(&s, p)),
            None if generated => create_secret(user, &api).await,
            None => Ok(Credential::Missing {
                reason: "PasswordSecretInvalid",
                message: format!("Secret {} has no non-empty key {}", at.secret, at.key),
            }),
        },
        (None, true) => create_secret(user, &api).await,
        (None, false) => Ok(Credential::Missing {
            reason: "PasswordSecretNotFound",
            message: format!("Secret {} not found", at.secret),
        }),
    }
}

async fn create_secret(user: &KafkaUser, api: &Api<Secret>) -> Result<Credential, Error> {
    let password = generate_password();
    let secret = credentials_secret(user, &password);
    info!(secret = %secret.name_any(), "generating the user's password");
    let written = api
        .patch(
            &secret.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(Error::WriteSecret)?;
    Ok(Credential::Password {
        password,
        version: written.metadata.resource_version.unwrap_or_default(),
    })
}

/// 32 letters and digits (190 bits), as the operator's own password.
fn generate_password() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn apply(user: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    let Some((endpoint, cluster)) = cluster_of(user, ctx).await? else {
        let message = format!(
            "KafkaCluster {} not found or being deleted",
            user.spec.cluster_ref
        );
        write(ctx, user, not_ready(user, "ClusterNotFound", message)).await?;
        return Ok(Action::requeue(WAIT));
    };
    if let Some(why) = reserved_name(user) {
        write(ctx, user, not_ready(user, "ReservedUserName", why)).await?;
        return Ok(Action::await_change());
    }
    if let Some(owner) = name_owner(user, ctx).await? {
        let message = format!(
            "KafkaUser {owner} already manages user {}",
            user.user_name()
        );
        write(ctx, user, not_ready(user, "UserNameConflict", message)).await?;
        return Ok(Action::requeue(WAIT));
    }
    let desired = desired_acls(user);
    if let Some(why) = invalid_acl(&desired) {
        write(ctx, user, not_ready(user, "InvalidAcl", why)).await?;
        return Ok(Action::await_change());
    }
    let credential = match user.spec.authentication.kind {
        UserAuthenticationType::ScramSha512 => password(user, ctx, &password_ref(user)).await?,
        UserAuthenticationType::Tls => certificate::ensure(user, ctx, &cluster).await?,
    };
    if let Credential::Missing { reason, message } = credential {
        write(ctx, user, not_ready(user, reason, message)).await?;
        return Ok(Action::requeue(WAIT));
    }
    match sync_kafka(user, ctx, &endpoint, &credential).await {
        Ok(status) => {
            write(ctx, user, status).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(e) => {
            // Say why in the status too; the error itself makes the controller retry.
            let status = not_ready(user, "KafkaError", e.to_string());
            if let Err(status_error) = write_status(&ctx.client, user, status).await {
                warn!(error = %status_error, "could not record the Kafka failure");
            }
            Err(e)
        }
    }
}

/// The Kafka side: a password set when the user has none or its Secret changed (a certificate
/// user has no SCRAM credential: one left from a change of type is removed), then the ACL diff
/// (created before deleted, so a rule being rewritten never leaves a gap with no access).
async fn sync_kafka(
    user: &KafkaUser,
    ctx: &Context,
    endpoint: &AdminEndpoint,
    credential: &Credential,
) -> Result<KafkaUserStatus, Error> {
    let admin = ctx.kafka.user_admin(endpoint);
    let name = user.user_name();
    let mut status = user.status.clone().unwrap_or_default();
    match credential {
        Credential::Password { password, version } => {
            let applied = status.password_secret_version.as_deref();
            if applied != Some(version.as_str()) || !admin.has_scram(name).await? {
                info!(user = name, "setting the SCRAM-SHA-512 password");
                admin.set_scram(name, password).await?;
            }
            status.password_secret_version = Some(version.clone());
            status.secret = Some(password_ref(user).secret);
            status.certificate_not_after = None;
        }
        Credential::Certificate { not_after } => {
            if admin.has_scram(name).await? {
                info!(user = name, "removing the SCRAM credential of a tls user");
                admin.delete_scram(name).await?;
            }
            status.password_secret_version = None;
            status.secret = Some(user.name_any());
            status.certificate_not_after.clone_from(not_after);
        }
        Credential::Missing { .. } => {}
    }
    let desired = desired_acls(user);
    let current = admin.acls(&principal(user)).await?;
    let diff = diff_acls(&desired, &current);
    if !diff.is_empty() {
        info!(
            user = name,
            create = diff.create.len(),
            delete = diff.delete.len(),
            "changing ACLs"
        );
    }
    if !diff.create.is_empty() {
        admin.create_acls(diff.create).await?;
    }
    if !diff.delete.is_empty() {
        admin.delete_acls(diff.delete).await?;
    }
    status.username = Some(name.to_string());
    status.acls = i32::try_from(desired.len()).ok();
    let decided = Decided::new(
        READY,
        true,
        "Synced",
        "the user's credential and ACLs match the spec",
    );
    let generation = user.metadata.generation;
    status.observed_generation = generation;
    status.conditions = merge(&status.conditions, &[decided], generation, &now());
    Ok(status)
}

/// Removes the user's credential and ACLs. Never blocks for long: with the cluster gone or
/// being deleted (e.g. namespace deletion) there is nothing to remove them from, and the
/// finalizer goes. A user name another KafkaUser manages is left alone.
async fn cleanup(user: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    if reserved_name(user).is_some() {
        return Ok(Action::await_change());
    }
    let Some((endpoint, _)) = cluster_of(user, ctx).await? else {
        info!("cluster gone or being deleted; releasing the user without removing it");
        return Ok(Action::await_change());
    };
    if name_owner(user, ctx).await?.is_some() {
        return Ok(Action::await_change());
    }
    let admin = ctx.kafka.user_admin(&endpoint);
    let current = admin.acls(&principal(user)).await?;
    info!(
        user = user.user_name(),
        acls = current.len(),
        "removing the user"
    );
    if !current.is_empty() {
        admin.delete_acls(current).await?;
    }
    admin.delete_scram(user.user_name()).await?;
    Ok(Action::await_change())
}

/// Writes the user's status, and tells of a new `Ready` reason in an event.
async fn write(ctx: &Context, user: &KafkaUser, status: KafkaUserStatus) -> Result<(), Error> {
    let note = ready_event(user.status.as_ref(), &status);
    write_status(&ctx.client, user, status)
        .await
        .map_err(Error::Status)?;
    if let Some(note) = note {
        ctx.recorder
            .publish_all(&user.object_ref(&()), &[note])
            .await;
    }
    Ok(())
}

fn ready_event(before: Option<&KafkaUserStatus>, after: &KafkaUserStatus) -> Option<Note> {
    let now = find(&after.conditions, READY)?;
    let was = before.and_then(|s| find(&s.conditions, READY));
    if was.is_some_and(|w| w.reason == now.reason) || now.reason == "KafkaError" {
        return None;
    }
    Some(if now.status == "True" {
        Note::normal(&now.reason, "Reconcile", &now.message)
    } else {
        Note::warning(&now.reason, "Reconcile", &now.message)
    })
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn not_ready(user: &KafkaUser, reason: &'static str, message: String) -> KafkaUserStatus {
    let mut status = user.status.clone().unwrap_or_default();
    let generation = user.metadata.generation;
    status.observed_generation = generation;
    status.username = Some(user.user_name().to_string());
    status.conditions = merge(
        &status.conditions,
        &[Decided::new(READY, false, reason, message)],
        generation,
        &now(),
    );
    status
}

/// What the controller does after a failed reconcile: retry soon.
pub fn error_policy(_user: Arc<KafkaUser>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(%error, "user reconcile failed");
    Action::requeue(WAIT)
}
