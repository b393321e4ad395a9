//! Storage changes of a running cluster, decided from what exists (pure: no client). A
//! StatefulSet's `volumeClaimTemplates` are immutable and Kubernetes never resizes the claims
//! it made from them, so a larger `spec.storage.size` is carried out in two steps: each broker's
//! PersistentVolumeClaim is asked for the new size (only where its StorageClass allows volume
//! expansion), then the StatefulSet is re-created with its pods orphaned so its template
//! matches; no broker restarts. Shrinking, another class and switching `ephemeral` cannot be
//! done to volumes in place: they are refused with a condition, and the StatefulSet keeps the
//! claim template it has, so every other change still rolls out.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use krait_crd::cluster::{ClaimStatus, Storage, StorageStatus};

use super::drift::quantity;
use crate::conditions::{DEGRADED, Decided, PROGRESSING};
use crate::names::ClusterNames;

/// Reasons of the conditions this module decides.
pub const STORAGE_CHANGE_REFUSED: &str = "StorageChangeRefused";
pub const VOLUME_EXPANSION_NOT_SUPPORTED: &str = "VolumeExpansionNotSupported";
pub const EXPANDING_VOLUMES: &str = "ExpandingVolumes";

/// `status.storage.state` values.
const READY: &str = "Ready";
const EXPANDING: &str = "Expanding";
const REFUSED: &str = "Refused";

/// What the storage decision is made from.
#[derive(Debug)]
pub struct Observed<'a> {
    pub names: &'a ClusterNames,
    pub spec: &'a Storage,
    /// The cluster's StatefulSet as it is; `None` before it is first created.
    pub statefulset: Option<&'a StatefulSet>,
    /// PersistentVolumeClaims carrying the brokers' selector labels.
    pub claims: &'a [PersistentVolumeClaim],
    /// Whether the StorageClass of the claims that must grow allows expansion: `None` when it
    /// was not read (nothing to grow), `Some(false)` also when there is no such class.
    pub expansion_allowed: Option<bool>,
}

/// What to do about storage in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The storage to build the StatefulSet with: the spec's, or the one the StatefulSet has
    /// when the spec's cannot be carried out.
    pub effective: Storage,
    /// Claims to ask for `effective.size` (merge patch of `spec.resources.requests`).
    pub grow: Vec<String>,
    /// The StatefulSet's claim template differs from `effective`: delete it with its pods
    /// orphaned, then apply it again.
    pub recreate: bool,
    pub progressing: Option<Decided>,
    pub degraded: Option<Decided>,
    pub status: Option<StorageStatus>,
}

impl Plan {
    fn as_specified(spec: &Storage) -> Self {
        Self {
            effective: spec.clone(),
            grow: Vec::new(),
            recreate: false,
            progressing: None,
            degraded: None,
            status: None,
        }
    }
}

/// The storage a StatefulSet was built with, read back from its claim template.
pub fn storage_of(statefulset: &StatefulSet) -> Storage {
    let template = statefulset
        .spec
        .volume_claim_templates
        .as_ref()
        .and_then(|t| t.first());
    let Some(spec) = template.and_then(|t| t.spec.as_ref()) else {
        return Storage {
            size: None,
            storage_class: None,
            ephemeral: true,
        };
    };
    Storage {
        size: requested(spec.resources.as_ref().and_then(|r| r.requests.as_ref())),
        storage_class: spec.storage_class_name.clone(),
        ephemeral: false,
    }
}

fn requested(requests: Option<&BTreeMap<String, Quantity>>) -> Option<Quantity> {
    requests.and_then(|r| r.get("storage")).cloned()
}

fn bytes(q: Option<&Quantity>) -> Option<f64> {
    q.and_then(|q| quantity(&q.0))
}

/// The claims of this cluster's brokers (`data-<statefulset>-<ordinal>`), sorted by name.
pub fn broker_claims<'a>(
    names: &ClusterNames,
    claims: &'a [PersistentVolumeClaim],
) -> Vec<&'a PersistentVolumeClaim> {
    let prefix = format!("data-{}-", names.statefulset());
    let mut found: Vec<&PersistentVolumeClaim> = claims
        .iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|ordinal| ordinal.parse::<u32>().is_ok())
        })
        .collect();
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    found
}

fn claim_request(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    requested(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    )
}

fn claim_capacity(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    claim
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .cloned()
}

/// Only a bound claim can be resized (the API server refuses the others).
fn bound(claim: &PersistentVolumeClaim) -> bool {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// Bound broker claims that request less than `size`.
fn too_small(names: &ClusterNames, claims: &[PersistentVolumeClaim], size: f64) -> Vec<String> {
    broker_claims(names, claims)
        .into_iter()
        .filter(|c| bound(c) && bytes(claim_request(c).as_ref()).is_some_and(|r| r < size))
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

/// The StorageClass whose `allowVolumeExpansion` must be read before planning: the class of
/// the first claim that must grow. `Some("")` for a claim without a class (statically
/// provisioned), which cannot be expanded.
pub fn class_to_check(o: &Observed<'_>) -> Option<String> {
    if o.statefulset.is_none() || o.spec.ephemeral || refusal(o).is_some() {
        return None;
    }
    let size = bytes(o.spec.size.as_ref())?;
    let grow = too_small(o.names, o.claims, size);
    let first = grow.first()?;
    let claim = o
        .claims
        .iter()
        .find(|c| c.metadata.name.as_ref() == Some(first))?;
    Some(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_default(),
    )
}

/// Why the spec's storage cannot be carried out on the StatefulSet that exists, if it cannot.
fn refusal(o: &Observed<'_>) -> Option<String> {
    let current = storage_of(o.statefulset?);
    let spec = o.spec;
    if spec.ephemeral != current.ephemeral {
        return Some(format!(
            "storage.ephemeral cannot change on a running cluster (it is {}): the brokers' \
             data would be left behind or lost",
            current.ephemeral
        ));
    }
    if spec.ephemeral {
        return None;
    }
    if spec.storage_class != current.storage_class {
        let name = |c: &Option<String>| c.clone().unwrap_or_else(|| "the default".into());
        return Some(format!(
            "storage.storageClass cannot change from {} to {}: a volume keeps the class it was \
             provisioned with",
            name(&current.storage_class),
            name(&spec.storage_class)
        ));
    }
    match (bytes(spec.size.as_ref()), bytes(current.size.as_ref())) {
        (Some(new), Some(old)) if new < old => Some(format!(
            "storage.size cannot shrink from {} to {}: volumes only grow",
            quantity_str(current.size.as_ref()),
            quantity_str(spec.size.as_ref())
        )),
        _ => None,
    }
}

fn quantity_str(q: Option<&Quantity>) -> String {
    q.map(|q| q.0.clone()).unwrap_or_default()
}

/// Decides the storage step of this reconcile.
pub fn plan(o: &Observed<'_>) -> Plan {
    let Some(statefulset) = o.statefulset else {
        // Created as specified; the status says so from the start, so it does not change once
        // the StatefulSet exists.
        return Plan {
            status: (!o.spec.ephemeral).then(|| storage_status(o, o.spec, &[], READY)),
            ..Plan::as_specified(o.spec)
        };
    };
    let current = storage_of(statefulset);
    if let Some(why) = refusal(o) {
        return refused(o, current, STORAGE_CHANGE_REFUSED, why);
    }
    if o.spec.ephemeral {
        return Plan::as_specified(o.spec);
    }
    let size = bytes(o.spec.size.as_ref()).unwrap_or(0.0);
    let grow = too_small(o.names, o.claims, size);
    if !grow.is_empty() && o.expansion_allowed != Some(true) {
        let why = format!(
            "storage.size {} needs the claims to grow, and their StorageClass does not allow \
             volume expansion (allowVolumeExpansion): the claims stay at their size",
            quantity_str(o.spec.size.as_ref())
        );
        return refused(o, current, VOLUME_EXPANSION_NOT_SUPPORTED, why);
    }
    let recreate = bytes(current.size.as_ref()) != Some(size);
    let status = storage_status(o, o.spec, &grow, READY);
    let progressing = (status.state == EXPANDING).then(|| {
        Decided::new(
            PROGRESSING,
            true,
            EXPANDING_VOLUMES,
            expanding_message(&status),
        )
    });
    Plan {
        effective: o.spec.clone(),
        grow,
        recreate,
        progressing,
        degraded: None,
        status: Some(status),
    }
}

/// Keeps the storage the StatefulSet has and says why in `Degraded`.
fn refused(o: &Observed<'_>, current: Storage, reason: &'static str, why: String) -> Plan {
    let status = (!current.ephemeral).then(|| storage_status(o, &current, &[], REFUSED));
    Plan {
        effective: current,
        grow: Vec::new(),
        recreate: false,
        progressing: None,
        degraded: Some(Decided::new(DEGRADED, true, reason, why)),
        status,
    }
}

/// Status of the claims once the ones in `grown` ask for `storage.size`.
fn storage_status(
    o: &Observed<'_>,
    storage: &Storage,
    grown: &[String],
    state: &str,
) -> StorageStatus {
    let claims: Vec<ClaimStatus> = broker_claims(o.names, o.claims)
        .into_iter()
        .map(|c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let requested = if grown.contains(&name) {
                storage.size.clone()
            } else {
                claim_request(c)
            };
            ClaimStatus {
                name,
                requested: requested.map(|q| q.0),
                capacity: claim_capacity(c).map(|q| q.0),
            }
        })
        .collect();
    let growing = claims.iter().any(|c| {
        let wanted = c.requested.as_deref().and_then(quantity);
        let has = c.capacity.as_deref().and_then(quantity);
        matches!((wanted, has), (Some(w), Some(h)) if h < w)
    });
    let state = if state == READY && growing {
        EXPANDING
    } else {
        state
    };
    StorageStatus {
        size: quantity_str(storage.size.as_ref()),
        state: state.into(),
        claims,
    }
}

fn expanding_message(status: &StorageStatus) -> String {
    let growing: Vec<String> = status
        .claims
        .iter()
        .filter(|c| {
            let wanted = c.requested.as_deref().and_then(quantity);
            let has = c.capacity.as_deref().and_then(quantity);
            matches!((wanted, has), (Some(w), Some(h)) if h < w)
        })
        .map(|c| {
            format!(
                "{} ({} of {})",
                c.name,
                c.capacity.clone().unwrap_or_default(),
                c.requested.clone().unwrap_or_default()
            )
        })
        .collect();
    format!("volumes growing to {}: {}", status.size, growing.join(", "))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn size(s: &str) -> BTreeMap<String, Quantity> {
        BTreeMap::from([("storage".to_string(), Quantity(s.into()))])
    }

    fn claim_spec(request: &str, class: Option<&str>) -> PersistentVolumeClaimSpec {
        PersistentVolumeClaimSpec {
            storage_class_name: class.map(str::to_string),
            resources: Some(VolumeResourceRequirements {
                requests: Some(size(request)),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }
    }

    fn statefulset(request: Option<&str>) -> StatefulSet {
        let template = request.map(|r| PersistentVolumeClaim {
            spec: Some(claim_spec(r, None)),
            ..PersistentVolumeClaim::default()
        });
        StatefulSet {
            spec: StatefulSetSpec {
                volume_claim_templates: template.map(|t| vec![t]),
                ..StatefulSetSpec::default()
            },
            ..StatefulSet::default()
        }
    }

    fn claim(name: &str, request: &str, capacity: &str, phase: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(claim_spec(request, Some("standard"))),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some(phase.into()),
                capacity: Some(size(capacity)),
                ..PersistentVolumeClaimStatus::default()
            }),
        }
    }

    fn spec(size: &str) -> Storage {
        Storage {
            size: Some(Quantity(size.into())),
            storage_class: None,
            ephemeral: false,
        }
    }

    fn observed<'a>(
        names: &'a ClusterNames,
        spec: &'a Storage,
        sts: Option<&'a StatefulSet>,
        claims: &'a [PersistentVolumeClaim],
        expansion_allowed: Option<bool>,
    ) -> Observed<'a> {
        Observed {
            names,
            spec,
            statefulset: sts,
            claims,
            expansion_allowed,
        }
    }

    #[test]
    fn a_new_cluster_takes_the_spec_as_it_is() {
        let names = ClusterNames::new("main", "kafka");
        let spec = spec("10Gi");
        let plan = plan(&observed(&names, &spec, None, &[], None));
        assert_eq!(plan.effective, spec);
        assert!(plan.grow.is_empty() && !plan.recreate && plan.degraded.is_none());
        let status = plan.status.unwrap();
        assert_eq!(
            (status.size.as_str(), status.state.as_str()),
            ("10Gi", "Ready")
        );
    }

    #[test]
    fn growth_asks_bound_broker_claims_only_and_recreates_the_statefulset() {
        let names = ClusterNames::new("main", "kafka");
        let sts = statefulset(Some("10Gi"));
        let claims = [
            claim("data-main-0", "10Gi", "10Gi", "Bound"),
            claim("data-main-1", "10240Mi", "10Gi", "Bound"),
            claim("data-main-2", "10Gi", "10Gi", "Pending"),
            claim("data-other-0", "10Gi", "10Gi", "Bound"),
            claim("data-main-3", "20Gi", "20Gi", "Bound"),
        ];
        let spec = spec("20Gi");
        let o = observed(&names, &spec, Some(&sts), &claims, None);
        assert_eq!(class_to_check(&o).as_deref(), Some("standard"));
        let plan = plan(&observed(&names, &spec, Some(&sts), &claims, Some(true)));
        assert_eq!(plan.grow, ["data-main-0", "data-main-1"]);
        assert!(plan.recreate);
        assert_eq!(plan.effective, spec);
        let status = plan.status.unwrap();
        assert_eq!(status.state, "Expanding");
        assert_eq!(status.claims.len(), 4, "only this cluster's claims");
        assert_eq!(plan.progressing.unwrap().reason, EXPANDING_VOLUMES,);
    }

    #[test]
    fn the_same_size_in_other_units_changes_nothing() {
        let names = ClusterNames::new("main", "kafka");
        let sts = statefulset(Some("10Gi"));
        let claims = [claim("data-main-0", "10Gi", "10Gi", "Bound")];
        let spec = spec("10240Mi");
        let o = observed(&names, &spec, Some(&sts), &claims, None);
        assert_eq!(class_to_check(&o), None);
        let plan = plan(&o);
        assert!(plan.grow.is_empty() && !plan.recreate);
        assert_eq!(plan.status.unwrap().state, "Ready");
        assert_eq!(plan.degraded, None);
    }

    #[test]
    fn refusals_keep_the_storage_the_statefulset_has() {
        let names = ClusterNames::new("main", "kafka");
        let sts = statefulset(Some("10Gi"));
        let claims = [claim("data-main-0", "10Gi", "10Gi", "Bound")];
        let current = storage_of(&sts);
        let cases = [
            (spec("5Gi"), None, STORAGE_CHANGE_REFUSED, "cannot shrink"),
            (
                Storage {
                    storage_class: Some("fast".into()),
                    ..spec("10Gi")
                },
                None,
                STORAGE_CHANGE_REFUSED,
                "storageClass cannot change",
            ),
            (
                Storage {
                    size: None,
                    storage_class: None,
                    ephemeral: true,
                },
                None,
                STORAGE_CHANGE_REFUSED,
                "ephemeral cannot change",
            ),
            (
                spec("20Gi"),
                Some(false),
                VOLUME_EXPANSION_NOT_SUPPORTED,
                "allowVolumeExpansion",
            ),
        ];
        for (spec, allowed, reason, words) in cases {
            let plan = plan(&observed(&names, &spec, Some(&sts), &claims, allowed));
            assert_eq!(plan.effective, current, "{words}");
            assert!(plan.grow.is_empty() && !plan.recreate, "{words}");
            let degraded = plan.degraded.unwrap();
            assert_eq!(degraded.reason, reason);
            assert!(degraded.message.contains(words), "{}", degraded.message);
            assert_eq!(plan.status.unwrap().state, "Refused");
        }
    }

    #[test]
    fn ephemeral_storage_has_nothing_to_grow() {
        let names = ClusterNames::new("main", "kafka");
        let sts = statefulset(None);
        let spec = Storage {
            size: None,
            storage_class: None,
            ephemeral: true,
        };
        let plan = plan(&observed(&names, &spec, Some(&sts), &[], None));
        assert_eq!(plan, Plan::as_specified(&spec));
    }
}
