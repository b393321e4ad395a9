//! What kube-apiserver refuses when an object is updated, for the kinds whose rules the
//! operator meets: a StatefulSet's spec beyond the fields an update may change
//! (`pkg/apis/apps/validation`), and a PersistentVolumeClaim's spec beyond its storage request,
//! a request below what the volume already has, and growth of an unbound claim
//! (`pkg/apis/core/validation`) or of one whose StorageClass does not allow volume expansion
//! (the `PersistentVolumeClaimResize` admission plugin), and a (Cluster)RoleBinding's
//! `roleRef` (`pkg/apis/rbac/validation`). Pure: takes the stored objects, returns the
//! refusal.

use serde_json::{Value, json};

/// The collection key cluster-scoped StorageClasses are stored under.
pub const STORAGE_CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";

/// A refusal: HTTP code, reason, message.
pub type Refusal = (u16, &'static str, String);

/// StatefulSet spec fields an update may change (kube-apiserver 1.3x).
const STATEFULSET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Checks an update of `old` to `new` in `collection`; `class` finds a StorageClass by name.
pub fn check_update(
    collection: &str,
    old: &Value,
    new: &Value,
    class: impl Fn(&str) -> Option<Value>,
) -> Result<(), Refusal> {
    if collection.ends_with("/statefulsets") {
        return statefulset(old, new);
    }
    if collection.ends_with("/persistentvolumeclaims") {
        return claim(old, new, class);
    }
    if collection.ends_with("rolebindings") && old["roleRef"] != new["roleRef"] {
        return Err((
            422,
            "Invalid",
            "roleRef: Invalid value: cannot change roleRef".into(),
        ));
    }
    Ok(())
}

fn without(spec: &Value, fields: &[&str]) -> Value {
    let mut spec = spec.as_object().cloned().unwrap_or_default();
    for f in fields {
        spec.remove(*f);
    }
    Value::Object(spec)
}

fn statefulset(old: &Value, new: &Value) -> Result<(), Refusal> {
    if without(&old["spec"], STATEFULSET_MUTABLE) == without(&new["spec"], STATEFULSET_MUTABLE) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    Err((
        422,
        "Invalid",
        format!(
            "StatefulSet.apps \"{name}\" is invalid: spec: Forbidden: updates to statefulset \
             spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', \
             'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and \
             'minReadySeconds' are forbidden"
        ),
    ))
}

/// Bytes of a quantity string (binary and decimal suffixes).
pub fn bytes(q: &Value) -> Option<f64> {
    let s = q.as_str()?;
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, f)| s.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((s, 1.0));
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn claim(old: &Value, new: &Value, class: impl Fn(&str) -> Option<Value>) -> Result<(), Refusal> {
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let invalid = |field: &str, why: &str| {
        Err((
            422,
            "Invalid",
            format!("PersistentVolumeClaim \"{name}\" is invalid: {field}: Forbidden: {why}"),
        ))
    };
    let fixed = |v: &Value| {
        let mut spec = without(&v["spec"], &["volumeAttributesClassName"]);
        spec["resources"]
            .as_object_mut()
            .map(|r| r.remove("requests"));
        spec
    };
    let immutable = "spec is immutable after creation except resources.requests and \
                     volumeAttributesClassName for bound claims";
    if fixed(old) != fixed(new) {
        return invalid("spec", immutable);
    }
    let request = |v: &Value| bytes(&v["spec"]["resources"]["requests"]["storage"]);
    let (Some(before), Some(after)) = (request(old), request(new)) else {
        return Ok(());
    };
    let capacity = bytes(&old["status"]["capacity"]["storage"]);
    match capacity {
        Some(c) if after < c => {
            return invalid(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            );
        }
        None if after < before => {
            return invalid(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            );
        }
        _ => {}
    }
    if after <= before {
        return Ok(());
    }
    if old["status"]["phase"] != json!("Bound") {
        return invalid("spec", immutable);
    }
    let class_name = old["spec"]["storageClassName"].as_str().unwrap_or_default();
    let expandable = class(class_name).is_some_and(|c| c["allowVolumeExpansion"] == json!(true));
    if !expandable {
        return Err((
            403,
            "Forbidden",
            format!(
                "persistentvolumeclaims \"{name}\" is forbidden: only dynamically provisioned \
                 pvc can be resized and the storageclass that provisions the pvc must support \
                 resize"
            ),
        ));
    }
    Ok(())
}
