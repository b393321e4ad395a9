//! The `krait-operator` binary's `crd` subcommand prints exactly the CRDs kept in `crds/`,
//! `crd-reference` writes what krait-crd renders, `run` documents its flags, and `rack` (the
//! brokers' init step) takes its node from `NODE_NAME` and fails clearly without an API server.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn crd_subcommand_prints_the_crds_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let expected: Vec<String> = krait_crd::manifests::all()
        .unwrap()
        .into_iter()
        .map(|(file, _)| std::fs::read_to_string(dir.join(file)).unwrap())
        .collect();
    assert_eq!(printed, expected.join("---\n"));
}

#[test]
fn crd_reference_subcommand_writes_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crd-reference.md");
    let run = Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .arg("crd-reference")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        krait_crd::reference::all().unwrap()
    );
}

#[test]
fn run_lists_its_flags_with_environment_fallbacks() {
    let out = Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--namespaces",
        "--http-listen",
        "--leader-election",
        "--log",
        "KRAIT_OPERATOR_NAMESPACES",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn rack_takes_its_node_from_node_name_and_fails_clearly_outside_a_pod() {
    let help = Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .args(["rack", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in ["--node", "NODE_NAME", "--topology-key", "--out"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    // No in-cluster service account and no kubeconfig: nothing to read the Node with.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rack");
    let run = Command::new(env!("CARGO_BIN_EXE_krait-operator"))
        .args([
            "rack",
            "--topology-key=topology.kubernetes.io/zone",
            "--out",
        ])
        .arg(&out)
        .env("NODE_NAME", "node-a")
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("connecting to the Kubernetes API with the pod's service account"),
        "{stderr}"
    );
    assert!(!out.exists());
}
