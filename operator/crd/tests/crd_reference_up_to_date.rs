//! `docs/crd-reference.md` must hold exactly what the CRD types render: a type or doc-comment
//! change without regenerating (`krait-operator crd-reference --out docs/crd-reference.md`)
//! fails here.

use std::path::PathBuf;

const REGENERATE: &str = "cargo run -p krait-operator -- crd-reference --out docs/crd-reference.md";

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/crd-reference.md")
}

#[test]
fn crd_reference_matches_the_types() {
    let generated = krait_crd::reference::all().unwrap();
    let on_disk = std::fs::read_to_string(reference_path()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/crd-reference.md differs from the CRD types: run `{REGENERATE}`"
    );
}
