//! A `tls` KafkaUser's client certificate: issued by its cluster's clients CA into the Secret
//! named after the KafkaUser, kept while it is the current CA's, names the user and is outside
//! its renewal window (`spec.clusterCa.renewalDays` of the cluster), issued anew otherwise.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff;
use krait_crd::{KafkaCluster, KafkaUser};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tracing::info;

use super::plan::{
    CA_CERT_KEY, Credential, USER_CERT_KEY, certificate_secret, owned_by, secret_text,
};
use crate::cluster::build::secret::stored_clients_ca;
use crate::cluster::pki::CertError;
use crate::cluster::pki::clients::{
    certificate_info, clients_signer, user_certificate, user_certificate_current,
};
use crate::context::Context;
use crate::names::{ClusterNames, MANAGER};

/// A failed step of issuing a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("reading Secret {name}: {source}")]
    Read { name: String, source: kube::Error },
    #[error("writing Secret {name}: {source}")]
    Write { name: String, source: kube::Error },
    #[error("issuing: {0}")]
    Issue(#[from] CertError),
    #[error("Secret {0} does not hold this cluster's clients CA with its key")]
    UnusableCa(String),
}

/// The user's certificate as its Secret holds it, issued or renewed first when needed.
pub async fn ensure(
    user: &KafkaUser,
    ctx: &Context,
    cluster: &KafkaCluster,
) -> Result<Credential, CertificateError> {
    let ns = user.namespace().unwrap_or_default();
    let names = ClusterNames::new(&cluster.name_any(), &ns);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let get = |name: String| {
        let api = api.clone();
        async move {
            api.get_opt(&name)
                .await
                .map_err(|source| CertificateError::Read { name, source })
        }
    };
    let ca_secret = get(names.clients_ca_secret()).await?;
    // The signing CA (during a renewal, the successor signs once every broker trusts it).
    let Some(ca) = ca_secret.and_then(|s| stored_clients_ca(&names, &[s]).ca) else {
        return Ok(Credential::Missing {
            reason: "ClientsCaNotFound",
            message: format!(
                "KafkaCluster {} has no clients CA: tls users need a listener with authentication type tls",
                cluster.name_any()
            ),
        });
    };
    let existing = get(user.name_any()).await?;
    if let Some(secret) = &existing
        && !owned_by(secret, user)
    {
        return Ok(Credential::Missing {
            reason: "SecretConflict",
            message: format!(
                "Secret {} exists and was not made for this KafkaUser",
                user.name_any()
            ),
        });
    }
    let now = jiff::Timestamp::now().as_second();
    let renewal_days = cluster.spec.cluster_ca.renewal_days;
    let held = existing
        .as_ref()
        .and_then(|s| secret_text(s, USER_CERT_KEY))
        .filter(|cert| {
            user_certificate_current(cert, &ca.cert_pem, user.user_name(), now, renewal_days)
        })
        .filter(|_| {
            existing
                .as_ref()
                .and_then(|s| secret_text(s, CA_CERT_KEY))
                .is_some_and(|pem| pem == ca.cert_pem)
        });
    let cert_pem = match held {
        Some(cert) => cert,
        None => issue(user, &names, &ca, now, cluster, &api).await?,
    };
    let not_after = certificate_info(&cert_pem)
        .and_then(|c| jiff::Timestamp::from_second(c.not_after).ok())
        .map(|t| t.to_string());
    Ok(Credential::Certificate { not_after })
}

/// Issues a certificate for the user and stores it with its key in the user's Secret.
async fn issue(
    user: &KafkaUser,
    names: &ClusterNames,
    ca: &crate::cluster::pki::CaMaterial,
    now: i64,
    cluster: &KafkaCluster,
    api: &Api<Secret>,
) -> Result<String, CertificateError> {
    let signer = clients_signer(names, ca)
        .ok_or_else(|| CertificateError::UnusableCa(names.clients_ca_secret()))?;
    let validity = cluster.spec.cluster_ca.validity_days;
    let (cert, key) = user_certificate(user.user_name(), &signer, now, validity)?;
    let secret = certificate_secret(user, &ca.cert_pem, &cert, &key);
    info!(secret = %secret.name_any(), "issuing the user's certificate");
    api.patch(
        &secret.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await
    .map_err(|source| CertificateError::Write {
        name: secret.name_any(),
        source,
    })?;
    Ok(cert)
}
