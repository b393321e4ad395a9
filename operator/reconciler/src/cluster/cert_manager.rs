//! Applies or removes the brokers' cert-manager `Certificate`s (`build/certificate.rs`), and
//! only where the API server serves cert-manager's `Certificate` kind (asked of API discovery
//! at each reconcile, as `cluster/monitoring.rs` does for the PodMonitor). What cert-manager
//! then issues is read by `pki/issuer.rs`; [`certificates_condition`] tells how far it got.

use std::collections::{BTreeMap, BTreeSet};

use krait_crd::cluster::IssuerRef;
use kube::api::DynamicObject;

use super::build::certificate::{
    CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, CERTIFICATES, certificate_resource,
};
use super::pki::IssuerPki;
use super::reconcile::Error;
use super::validate::ValidatedCluster;
use crate::conditions::{CERTIFICATES_READY, Decided};
use crate::context::Context;

const KIND: &str = "Certificate";
/// `CertificatesReady` is true: every broker holds a certificate from the issuer, and every
/// broker trusts the CAs they chain to.
pub const CERTIFICATES_ISSUED: &str = "CertificatesIssued";
/// `CertificatesReady` is false: an issuer is named, but the API server does not serve
/// `cert-manager.io/v1` `certificates`.
pub const CERT_MANAGER_NOT_INSTALLED: &str = "CertManagerNotInstalled";
/// `CertificatesReady` is false: a broker has no usable certificate from the issuer yet.
pub const CERTIFICATES_PENDING: &str = "CertificatesPending";
/// `CertificatesReady` is false: the issuer signed with a CA not every broker trusts yet; the
/// brokers roll to trust it, then take the certificates.
pub const WAITING_FOR_TRUST: &str = "WaitingForTrust";

/// What became of the brokers' Certificates in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificatesState {
    /// No issuer named (any Certificates the operator made were deleted where served).
    Disabled,
    /// Applied, and what cert-manager issued so far.
    Applied {
        issuer: String,
        pending: BTreeMap<i32, String>,
        waiting: BTreeSet<i32>,
    },
    /// An issuer is named, but the API server does not serve the kind.
    NotServed,
}

impl CertificatesState {
    /// The operator waits on cert-manager or on a roll: worth looking again soon.
    pub fn busy(&self) -> bool {
        matches!(self, CertificatesState::Applied { pending, waiting, .. }
            if !pending.is_empty() || !waiting.is_empty())
    }

    /// The state after an apply, from what the issuer's PKI step found.
    pub fn applied(issuer: &IssuerRef, pki: &IssuerPki) -> Self {
        CertificatesState::Applied {
            issuer: format!("{} {}", issuer.kind.as_str(), issuer.name),
            pending: pki.pending.clone(),
            waiting: pki.waiting.clone(),
        }
    }
}

/// The `CertificatesReady` condition of a state; none without an issuer.
pub fn certificates_condition(state: &CertificatesState) -> Option<Decided> {
    let (status, reason, message) = match state {
        CertificatesState::Disabled => return None,
        CertificatesState::NotServed => (
            false,
            CERT_MANAGER_NOT_INSTALLED,
            format!(
                "spec.clusterCa.issuerRef names a cert-manager issuer, but the API server does \
                 not serve {CERT_MANAGER_GROUP}/{CERT_MANAGER_VERSION} {CERTIFICATES} \
                 (cert-manager is not installed): no broker certificate can be requested"
            ),
        ),
        CertificatesState::Applied {
            issuer, pending, ..
        } if !pending.is_empty() => {
            let each: Vec<String> = pending
                .iter()
                .map(|(id, why)| format!("broker {id}: {why}"))
                .collect();
            (
                false,
                CERTIFICATES_PENDING,
                format!("waiting for {issuer}: {}", each.join("; ")),
            )
        }
        CertificatesState::Applied {
            issuer, waiting, ..
        } if !waiting.is_empty() => {
            let ids: Vec<String> = waiting.iter().map(i32::to_string).collect();
            (
                false,
                WAITING_FOR_TRUST,
                format!(
                    "{issuer} signed with a new CA: the brokers restart one at a time to trust \
                     it, then broker(s) {} take the certificates it signed",
                    ids.join(", ")
                ),
            )
        }
        CertificatesState::Applied { issuer, .. } => (
            true,
            CERTIFICATES_ISSUED,
            format!("every broker holds a certificate issued by {issuer}, and trusts its CA"),
        ),
    };
    Some(Decided::new(CERTIFICATES_READY, status, reason, message))
}

/// Brings the cluster's Certificates to `desired` where the kind is served: applied where
/// changed, and any other this cluster controls deleted (a broker scaled away, or the issuer
/// no longer named). Returns whether the kind is served.
pub async fn converge(
    ctx: &Context,
    cluster: &ValidatedCluster,
    desired: &[DynamicObject],
) -> Result<bool, Error> {
    let served = super::served(ctx, CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, CERTIFICATES)
        .await
        .map_err(|source| Error::Read {
            kind: "the API server's cert-manager.io/v1 resources",
            source,
        })?;
    if served {
        super::converge_dynamic(ctx, cluster, &certificate_resource(), KIND, desired).await?;
    }
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_says_what_the_brokers_wait_for() {
        let applied = |pending: &[(i32, &str)], waiting: &[i32]| CertificatesState::Applied {
            issuer: "ClusterIssuer corp-ca".into(),
            pending: pending.iter().map(|(i, w)| (*i, w.to_string())).collect(),
            waiting: waiting.iter().copied().collect(),
        };
        assert_eq!(certificates_condition(&CertificatesState::Disabled), None);
        let c = certificates_condition(&CertificatesState::NotServed).unwrap();
        assert_eq!((c.status, c.reason), (false, CERT_MANAGER_NOT_INSTALLED));
        let c = certificates_condition(&applied(&[(2, "not issued yet")], &[1])).unwrap();
        assert_eq!((c.status, c.reason), (false, CERTIFICATES_PENDING));
        assert!(
            c.message
                .contains("ClusterIssuer corp-ca: broker 2: not issued yet"),
            "{}",
            c.message
        );
        let c = certificates_condition(&applied(&[], &[1, 2])).unwrap();
        assert_eq!((c.status, c.reason), (false, WAITING_FOR_TRUST));
        assert!(c.message.contains("1, 2"), "{}", c.message);
        let c = certificates_condition(&applied(&[], &[])).unwrap();
        assert_eq!((c.status, c.reason), (true, CERTIFICATES_ISSUED));
        assert!(applied(&[], &[1]).busy() && !applied(&[], &[]).busy());
    }
}
