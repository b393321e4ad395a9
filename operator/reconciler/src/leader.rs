//! Leader election on a `coordination.k8s.io/v1` Lease, so only one operator replica
//! reconciles at a time. The decision is a pure function of the Lease and the clock; the loop
//! around it writes with the Lease's resourceVersion, so two candidates cannot both win.
//! A leader that fails to renew before its lease runs out reports the loss and must stop.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

/// Where the lease lives and who is asking.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

/// What a candidate should do with the lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No lease exists: create it, holding it.
    Create,
    /// This candidate holds it: renew.
    Renew,
    /// Held by nobody, or by someone who stopped renewing: take it over.
    TakeOver,
    /// Someone else holds a live lease.
    Follow { holder: String },
}

/// Decides from the lease and the current time.
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(holder) => {
            let duration =
                SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
            let expired = spec
                .renew_time
                .as_ref()
                .is_none_or(|renewed| renewed.0 + duration < now);
            if expired {
                Decision::TakeOver
            } else {
                Decision::Follow {
                    holder: holder.to_string(),
                }
            }
        }
    }
}

/// The lease as this candidate writes it when it creates, renews or takes it over.
pub fn held(config: &LeaseConfig, old: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let mine = old.and_then(|o| o.holder_identity.as_deref()) == Some(config.identity.as_str());
    let transitions = old.and_then(|o| o.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.duration.as_secs() as i32),
        acquire_time: if mine {
            old.and_then(|o| o.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if mine || old.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..LeaseSpec::default()
    }
}

/// A failed lease read or write.
#[derive(Debug, thiserror::Error)]
#[error("lease {name}: {source}")]
pub struct LeaseError {
    name: String,
    source: kube::Error,
}

/// One round: reads the lease, acts on the decision, returns whether this candidate now
/// leads. A write that loses a race (409) means someone else got there first.
pub async fn try_acquire(client: &Client, config: &LeaseConfig) -> Result<bool, LeaseError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let err = |source| LeaseError {
        name: config.name.clone(),
        source,
    };
    let current = api.get_opt(&config.name).await.map_err(err)?;
    let now = Timestamp::now();
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let result = match decide(spec, &config.identity, now) {
        Decision::Follow { .. } => return Ok(false),
        Decision::Create => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(held(config, None, now)),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Decision::Renew | Decision::TakeOver => {
            let mut lease = current.clone().unwrap_or_default();
            // resourceVersion is kept: the write fails if anyone changed the lease since.
            lease.spec = Some(held(config, spec, now));
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// Campaigns forever, publishing leadership on `leading`. Renews at a third of the lease
/// duration; once leading, failing to renew for a whole duration publishes `false`.
pub async fn campaign(client: Client, config: LeaseConfig, leading: watch::Sender<bool>) {
    let period = config.duration / 3;
    let mut last_success = tokio::time::Instant::now();
    loop {
        match try_acquire(&client, &config).await {
            Ok(now_leading) => {
                if now_leading != *leading.borrow() {
                    info!(identity = %config.identity, leading = now_leading, "leadership changed");
                }
                if now_leading {
                    last_success = tokio::time::Instant::now();
                }
                leading.send_replace(now_leading);
            }
            Err(error) => {
                warn!(%error, "lease round failed");
                if *leading.borrow() && last_success.elapsed() >= config.duration {
                    leading.send_replace(false);
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: "ops".into(),
            name: "krait-operator".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn absent_lease_is_created_and_own_lease_renewed() {
        assert_eq!(decide(None, "a", at(0)), Decision::Create);
        let lease = held(&config("a"), None, at(0));
        assert_eq!(decide(Some(&lease), "a", at(5)), Decision::Renew);
        assert_eq!(lease.lease_transitions, Some(0));
    }

    #[test]
    fn a_live_lease_of_another_is_followed_until_it_expires() {
        let lease = held(&config("a"), None, at(0));
        assert_eq!(
            decide(Some(&lease), "b", at(10)),
            Decision::Follow { holder: "a".into() }
        );
        assert_eq!(decide(Some(&lease), "b", at(16)), Decision::TakeOver);
        let taken = held(&config("b"), Some(&lease), at(16));
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(16))));
    }

    #[test]
    fn renewing_keeps_the_acquire_time() {
        let first = held(&config("a"), None, at(0));
        let renewed = held(&config("a"), Some(&first), at(5));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
        assert_eq!(renewed.lease_transitions, Some(0));
    }

    #[test]
    fn a_released_lease_is_taken_over() {
        let mut lease = held(&config("a"), None, at(0));
        lease.holder_identity = None;
        assert_eq!(decide(Some(&lease), "b", at(1)), Decision::TakeOver);
    }
}
