//! The `krait-operator` binary's `crd` subcommand prints exactly the CRDs kept in `crds/`,
//! `crd-reference` writes what krait-crd renders, and `run` documents its flags.

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
