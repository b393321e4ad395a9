//! The "restricted" Pod Security Standard on the operator's own pod: the chart's Deployment,
//! rendered by Helm's own engine (`tests/integration/chart.py`, PyPI helm-python-sdk, which
//! `tests/run` installs before the cargo tests), in each RBAC mode. The brokers' pods are
//! checked in `build.rs`; here also, that the checker refuses what the profile refuses.

use crate::common::pod_security;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

/// The chart rendered with `values`, as a list of manifests.
fn render_chart(values: &Value) -> Vec<Value> {
    let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/integration/chart.py");
    let output = Command::new("python3")
        .arg(&helper)
        .arg(values.to_string())
        .output()
        .expect("python3 renders the chart (pip install -r tests/requirements.txt)");
    assert!(
        output.status.success(),
        "{} failed (pip install -r tests/requirements.txt?): {}",
        helper.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_operator_deployment_passes_the_restricted_pod_security_standard() {
    for values in [
        json!({}),
        json!({"watchNamespaces": ["a", "b"], "replicaCount": 2}),
    ] {
        let manifests = render_chart(&values);
        let deployments: Vec<&Value> = manifests
            .iter()
            .filter(|m| m["kind"] == "Deployment")
            .collect();
        assert_eq!(deployments.len(), 1, "{values}");
        let pod = &deployments[0]["spec"]["template"]["spec"];
        assert_eq!(
            pod_security::violations(pod),
            Vec::<String>::new(),
            "{values}"
        );
    }
}

/// Breaks one rule of a compliant pod.
type Break = fn(&mut Value);

/// A pod that passes, to break one rule at a time.
fn compliant() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                    {"name": "tmp", "emptyDir": {}}],
    })
}

#[test]
fn the_checker_refuses_what_the_restricted_profile_refuses() {
    assert_eq!(pod_security::violations(&compliant()), Vec::<String>::new());
    let breaks: [(&str, Break); 13] = [
        ("host namespaces", |p| p["hostNetwork"] = json!(true)),
        ("host namespaces", |p| p["hostPID"] = json!(true)),
        ("volume types", |p| {
            p["volumes"][1] = json!({"name": "h", "hostPath": {"path": "/"}})
        }),
        ("privileged containers", |p| {
            p["containers"][0]["securityContext"]["privileged"] = json!(true)
        }),
        ("privilege escalation", |p| {
            p["containers"][0]["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("allowPrivilegeEscalation");
        }),
        ("capabilities", |p| {
            p["containers"][0]["securityContext"]["capabilities"] = json!({"drop": ["NET_RAW"]})
        }),
        ("capabilities", |p| {
            p["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"])
        }),
        ("running as non-root", |p| {
            p["securityContext"]["runAsNonRoot"] = json!(false)
        }),
        ("running as non-root user", |p| {
            p["containers"][0]["securityContext"]["runAsUser"] = json!(0)
        }),
        ("seccomp", |p| {
            p["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("seccompProfile");
        }),
        ("host ports", |p| {
            p["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 80}])
        }),
        ("sysctls", |p| {
            p["securityContext"]["sysctls"] = json!([{"name": "kernel.msgmax", "value": "1"}])
        }),
        // Init containers are held to the same rules (the brokers' rack init container).
        ("capabilities", |p| {
            p["initContainers"] = json!([{"name": "init", "image": "i", "securityContext": {
                "allowPrivilegeEscalation": false}}])
        }),
    ];
    for (rule, break_it) in breaks {
        let mut pod = compliant();
        break_it(&mut pod);
        let found = pod_security::violations(&pod);
        assert!(
            found.iter().any(|v| v.starts_with(rule)),
            "{rule} not caught in {pod}: {found:?}"
        );
    }
}
