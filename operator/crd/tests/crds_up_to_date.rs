//! `crds/` must hold exactly what the Rust types generate: a type change without
//! regenerating (`krait-operator crd --out-dir crds`) fails here.

use std::path::PathBuf;

#[test]
fn crds_directory_matches_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let generated = krait_crd::manifests::all().unwrap();
    let mut stale = Vec::new();
    for (file, yaml) in &generated {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(on_disk) if on_disk == *yaml => {}
            _ => stale.push(*file),
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = generated.iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "crds/ holds files the types do not generate"
    );
    assert!(
        stale.is_empty(),
        "crds/{stale:?} differ from the types: run `cargo run -p krait-operator -- crd --out-dir crds`"
    );
}
