//! The seams between the engine's modules run one way (docs/architecture.md, "Where each piece lives"): the settings
//! (`src/settings.rs`) sit below both the manifest and the pipeline, and the manifest below the pipeline, so each can
//! be read, changed and tested without the ones above it.

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The `crate::…` modules `file` (under src/) names in its code, comments left out.
fn uses(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{SRC}/{file}")).unwrap();
    let code = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found: Vec<String> = code
        .match_indices("crate::")
        .map(|(i, _)| code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn settings_import_neither_the_manifest_nor_the_pipeline() {
    assert_eq!(uses("settings.rs"), ["error"]);
}

#[test]
fn the_manifest_does_not_import_the_pipeline() {
    let used = uses("manifest.rs");
    assert!(!used.iter().any(|m| m == "pipeline"), "src/manifest.rs uses {used:?}");
    assert!(used.iter().any(|m| m == "settings"), "src/manifest.rs takes Recommended from src/settings.rs: {used:?}");
}
