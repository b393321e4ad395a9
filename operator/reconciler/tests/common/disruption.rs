//! The eviction subresource's decision, as kube-apiserver makes it
//! (`pkg/registry/core/pod/storage/eviction.go`): a pod covered by a PodDisruptionBudget is
//! evicted only while the budget allows a disruption, else 429 Too Many Requests. The budget's
//! status is the disruption controller's; when a test has not set one, it is computed here from
//! the pods the way that controller does. Pure: takes the stored objects, returns a verdict.

use serde_json::Value;

/// What the API server answers an eviction with.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delete the pod.
    Evict,
    /// Refused: HTTP code, reason, message, and the budget's own words (the `DisruptionBudget`
    /// cause of the Status's details).
    Refuse(u16, &'static str, &'static str, Option<String>),
}

fn selects(selector: &Value, pod: &Value) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "matchExpressions not served by the fake"
    );
    if selector.is_null() {
        return false;
    }
    // policy/v1: an empty selector selects every pod of the namespace.
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &pod["metadata"]["labels"][k] == v)
}

fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// An int-or-percent against `total`, rounded up as the disruption controller does.
fn scaled(value: &Value, total: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap();
            (percent * total + 99) / 100
        }
        other => panic!("not an int or percent: {other}"),
    }
}

/// The budget's (currentHealthy, desiredHealthy, disruptionsAllowed), as its status says or
/// as the disruption controller would compute it from `pods` (those it selects).
fn budget(pdb: &Value, pods: &[&Value]) -> (i64, i64, i64) {
    let status = &pdb["status"];
    if let Some(allowed) = status["disruptionsAllowed"].as_i64() {
        let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
        return (
            healthy,
            status["desiredHealthy"].as_i64().unwrap_or(0),
            allowed,
        );
    }
    let expected = pods.len() as i64;
    let healthy = pods.iter().filter(|p| ready(p)).count() as i64;
    let spec = &pdb["spec"];
    let desired = if !spec["minAvailable"].is_null() {
        scaled(&spec["minAvailable"], expected)
    } else if !spec["maxUnavailable"].is_null() {
        (expected - scaled(&spec["maxUnavailable"], expected)).max(0)
    } else {
        expected
    };
    (healthy, desired, (healthy - desired).max(0))
}

/// Whether `pod` may be evicted now, given the budgets and pods of its namespace.
pub fn decide(pod: &Value, pdbs: &[Value], pods: &[Value]) -> Verdict {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if !pod["metadata"]["deletionTimestamp"].is_null() || matches!(phase, "Succeeded" | "Failed") {
        return Verdict::Evict;
    }
    let covering: Vec<&Value> = pdbs
        .iter()
        .filter(|b| selects(&b["spec"]["selector"], pod))
        .collect();
    let pdb = match covering.as_slice() {
        [] => return Verdict::Evict,
        [one] => *one,
        _ => {
            return Verdict::Refuse(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction \
                 subresource does not support.",
                None,
            );
        }
    };
    let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    let selected: Vec<&Value> = pods
        .iter()
        .filter(|p| selects(&pdb["spec"]["selector"], p))
        .collect();
    let (healthy, desired, allowed) = budget(pdb, &selected);
    // A pod that is not Ready may always go with unhealthyPodEvictionPolicy AlwaysAllow, and
    // with IfHealthyBudget (the default) while the application is not disrupted.
    let always = pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
    if !ready(pod) && (always || (healthy >= desired && desired > 0)) {
        return Verdict::Evict;
    }
    if allowed > 0 {
        return Verdict::Evict;
    }
    Verdict::Refuse(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        Some(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {healthy} currently"
        )),
    )
}
