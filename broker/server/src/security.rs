//! What a broker enforces about who its clients are: the authorizer settings, the mapping from
//! certificate subjects to principals, and the SCRAM users `--add-scram` creates at start.

use krait_acl::AuthorizerConfig;
use krait_auth::principal::{PrincipalMapper, subject_dn};
use krait_auth::scram::ScramCredential;
use krait_image::MetadataRecord;
use rustls_pki_types::CertificateDer;

use crate::broker::Broker;
use crate::config::{BrokerConfig, ConfigError};
use crate::context::Principal;

/// SCRAM iterations of the credentials `--add-scram` creates (Kafka's default for
/// kafka-storage and kafka-configs).
const BOOTSTRAP_ITERATIONS: u32 = 4096;

/// The security settings every connection consults.
#[derive(Debug)]
pub struct Security {
    /// ACL enforcement; `None` allows everything, as a Kafka broker without an authorizer.
    pub authorizer: Option<AuthorizerConfig>,
    pub principal_mapper: PrincipalMapper,
}

impl Security {
    pub fn from_config(config: &BrokerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            authorizer: config.authorizer()?,
            principal_mapper: config.principal_mapper()?,
        })
    }

    /// The principal a client certificate names: `User:` and the mapped subject DN.
    pub fn certificate_principal(
        &self,
        certificate: &CertificateDer<'_>,
    ) -> Result<Principal, krait_auth::principal::PrincipalError> {
        let dn = subject_dn(certificate.as_ref())?;
        Ok(Principal::user(&self.principal_mapper.map(&dn)?))
    }
}

/// Creates the `--add-scram` users that do not have a credential of that mechanism yet.
pub async fn add_scram_users(broker: &Broker) -> anyhow::Result<()> {
    let wanted = broker.config.scram_bootstrap()?;
    if wanted.is_empty() {
        return Ok(());
    }
    let image = broker.cluster.image();
    let records: Vec<MetadataRecord> = wanted
        .into_iter()
        .filter(|(user, mechanism, _)| {
            !image
                .scram
                .get(user)
                .is_some_and(|c| c.contains_key(mechanism))
        })
        .map(|(user, mechanism, password)| {
            tracing::info!(%user, mechanism = mechanism.name(), "creating SCRAM user from --add-scram");
            MetadataRecord::SetScramCredential {
                user,
                credential: ScramCredential::generate(
                    mechanism,
                    password.as_bytes(),
                    BOOTSTRAP_ITERATIONS,
                ),
            }
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    let results = broker.cluster.propose(records).await?;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        anyhow::bail!("--add-scram: {e}");
    }
    Ok(())
}
