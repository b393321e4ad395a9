//! `krait-operator render -f <manifest>` on every example in `examples/`: it prints the objects
//! the operator would apply, every one of which validates against the Kubernetes schemas of
//! each version `docs/kubernetes.md` supports (PyPI kubernetes-validate, strict, through
//! `tests/integration/kube_validate.py`), and whose broker pods pass the "restricted" Pod
//! Security Standard. An invalid manifest is refused with the reason and prints nothing.

use crate::common::pod_security;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize as _;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn render(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .args(["render", "-f"])
        .arg(path)
        .output()
        .unwrap()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Failures kubernetes-validate reports for `manifests` on the supported versions.
fn kubernetes_validate(manifests: &[Value]) -> String {
    let helper = root().join("tests/integration/kube_validate.py");
    let mut child = Command::new("python3")
        .arg(&helper)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs kube_validate.py (pip install -r tests/requirements.txt)");
    let input = serde_json::to_vec(manifests).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failures = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        stderr.starts_with("versions: 1."),
        "{} failed (pip install -r tests/requirements.txt?): {stderr}",
        helper.display()
    );
    assert_eq!(out.status.success(), failures.is_empty(), "{stderr}");
    failures
}

#[test]
fn every_example_renders_objects_that_validate_on_every_supported_kubernetes() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    let mut clusters = 0;
    for example in &examples {
        let out = render(example);
        assert!(
            out.status.success(),
            "{}: {}",
            example.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let objects = documents(&String::from_utf8(out.stdout).unwrap());
        let statefulsets: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "StatefulSet")
            .collect();
        for sts in &statefulsets {
            let pod = &sts["spec"]["template"]["spec"];
            assert_eq!(
                pod_security::violations(pod),
                Vec::<String>::new(),
                "{}",
                example.display()
            );
        }
        clusters += statefulsets.len();
        let failures = kubernetes_validate(&objects);
        assert!(failures.is_empty(), "{}:\n{failures}", example.display());
    }
    assert!(
        clusters >= 1,
        "no example holds a KafkaCluster: {examples:?}"
    );
}

#[test]
fn a_cluster_renders_every_object_the_operator_applies_in_order() {
    let out = render(&root().join("examples/kafkacluster.yaml"));
    let text = String::from_utf8(out.stdout).unwrap();
    let kinds: Vec<String> = documents(&text)
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount main",
            // The example is rack-aware: its brokers may read their Node's zone.
            "ClusterRoleBinding krait-kafka-main-rack",
            "ConfigMap main-config",
            "Service main-brokers",
            "Service main-bootstrap",
            "StatefulSet main",
            "PodDisruptionBudget main"
        ]
    );
    assert!(
        text.contains("# Not shown: Secrets main-cluster-ca"),
        "{text}"
    );
}

#[test]
fn an_invalid_manifest_is_refused_with_the_reason() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid-replication-factor.yaml");
    let out = render(&fixture);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid spec"), "{stderr}");
}
