//! `KafkaUser` reconciliation: the pure plan (principal, ACL bindings and their diff, the
//! generated credentials Secret), a `tls` user's certificate (`certificate.rs`), and the
//! reconcile that carries it out through the admin protocol (`user_admin.rs`) and the
//! Kubernetes API (finalizer, Secrets, status).

pub mod certificate;
pub mod plan;
pub mod reconcile;

pub use plan::{AclDiff, desired_acls, diff_acls};
pub use reconcile::{Error, reconcile};
