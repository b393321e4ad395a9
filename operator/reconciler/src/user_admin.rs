//! The operator's view of a cluster's users through the Kafka admin protocol (`krait-admin`):
//! a user's SCRAM-SHA-512 credential (whether it has one, set it, delete it) and the ACLs of a
//! principal (read, create, delete exact bindings). A small trait, so tests can stand in for
//! the cluster.
//!
//! To ensure correctness, implementations must: report what the cluster says, never a guess
//! (an unreachable broker is an error, not "no credential" or "no ACLs"); treat deleting what
//! is already gone as success.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use krait_acl::{AclBinding, AclBindingFilter, Operation, PatternType, Permission, ResourceType};
use krait_admin::{Admin, AdminError, ScramMechanism};

use crate::kafka::AdminEndpoint;

/// The mechanism of KafkaUser passwords, in Kafka's name.
pub const USER_SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// PBKDF2 iterations of the credentials the operator sets (Kafka's minimum and kafka-configs'
/// default is 4096).
const ITERATIONS: u32 = 4096;

/// A failed user operation.
#[derive(Debug, thiserror::Error)]
pub enum UserAdminError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the admin task for {0} failed")]
    Task(&'static str),
}

/// Users and ACLs of one cluster.
pub trait UserAdmin: Send + Sync {
    /// Whether `user` has a SCRAM-SHA-512 credential.
    fn has_scram(&self, user: &str) -> BoxFuture<'static, Result<bool, UserAdminError>>;
    /// Sets `user`'s SCRAM-SHA-512 password (a fresh salt each time).
    fn set_scram(
        &self,
        user: &str,
        password: &str,
    ) -> BoxFuture<'static, Result<(), UserAdminError>>;
    /// Removes `user`'s SCRAM-SHA-512 credential; an absent one is success.
    fn delete_scram(&self, user: &str) -> BoxFuture<'static, Result<(), UserAdminError>>;
    /// Every ACL whose principal is `principal`, sorted.
    fn acls(&self, principal: &str) -> BoxFuture<'static, Result<Vec<AclBinding>, UserAdminError>>;
    /// Creates `bindings`.
    fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>>;
    /// Deletes exactly `bindings` (an absent one is success).
    fn delete_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>>;
}

/// The filter that selects exactly `binding`.
pub fn exact_filter(binding: &AclBinding) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: binding.resource_type,
        resource_name: Some(binding.resource_name.clone()),
        pattern_type: binding.pattern_type,
        principal: Some(binding.principal.clone()),
        host: Some(binding.host.clone()),
        operation: binding.operation,
        permission: binding.permission,
    }
}

/// The filter that selects every ACL of `principal`.
pub fn principal_filter(principal: &str) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: Some(principal.to_string()),
        host: None,
        operation: Operation::Any,
        permission: Permission::Any,
    }
}

/// The implementation on `krait-admin`: one admin session per call, on a blocking thread.
#[derive(Debug, Clone)]
pub struct WireUserAdmin {
    endpoint: Arc<AdminEndpoint>,
    timeout: Duration,
}

impl WireUserAdmin {
    pub fn new(endpoint: &AdminEndpoint, timeout: Duration) -> Self {
        Self {
            endpoint: Arc::new(endpoint.clone()),
            timeout,
        }
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(Admin) -> Result<T, UserAdminError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, UserAdminError>> {
        self.endpoint
            .session(self.timeout, UserAdminError::Task(what), work)
    }
}

fn scram_mechanism() -> ScramMechanism {
    ScramMechanism::Sha512
}

/// Whether `admin`'s cluster holds a SCRAM-SHA-512 credential for `user`.
fn holds_scram(admin: &mut Admin, user: &str) -> Result<bool, UserAdminError> {
    Ok(admin.describe_scram_users(None)?.iter().any(|u| {
        u.user == user
            && u.credentials
                .iter()
                .any(|c| c.mechanism == USER_SCRAM_MECHANISM)
    }))
}

impl UserAdmin for WireUserAdmin {
    fn has_scram(&self, user: &str) -> BoxFuture<'static, Result<bool, UserAdminError>> {
        let user = user.to_string();
        self.run("describing SCRAM users", move |mut admin| {
            holds_scram(&mut admin, &user)
        })
    }

    fn set_scram(
        &self,
        user: &str,
        password: &str,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        let (user, password) = (user.to_string(), password.to_string());
        self.run("setting a SCRAM password", move |mut admin| {
            Ok(admin.set_scram_password(&user, scram_mechanism(), &password, ITERATIONS)?)
        })
    }

    fn delete_scram(&self, user: &str) -> BoxFuture<'static, Result<(), UserAdminError>> {
        let user = user.to_string();
        self.run("deleting a SCRAM credential", move |mut admin| {
            if holds_scram(&mut admin, &user)? {
                admin.delete_scram(&user, scram_mechanism())?;
            }
            Ok(())
        })
    }

    fn acls(&self, principal: &str) -> BoxFuture<'static, Result<Vec<AclBinding>, UserAdminError>> {
        let filter = principal_filter(principal);
        self.run("describing ACLs", move |mut admin| {
            Ok(admin.describe_acls(&filter)?)
        })
    }

    fn create_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        self.run("creating ACLs", move |mut admin| {
            Ok(admin.create_acls(&bindings)?)
        })
    }

    fn delete_acls(
        &self,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'static, Result<(), UserAdminError>> {
        let filters: Vec<AclBindingFilter> = bindings.iter().map(exact_filter).collect();
        self.run("deleting ACLs", move |mut admin| {
            admin.delete_acls(&filters)?;
            Ok(())
        })
    }
}
