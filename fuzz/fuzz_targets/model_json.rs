//! A hostile model.json (the page accepts one from any folder a person picks): `Manifest::from_json`, then the
//! whole load, every config and scheduler checked, against the real weights of the tiny fixture. Beyond "no
//! panic", libFuzzer's -malloc_limit_mb and -timeout hold it to "costs little memory and time".
#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unclip::backend::cpu::Cpu;
use unclip::gguf::GgmlType;
use unclip::manifest::Manifest;
use unclip::UnCLIPPipeline;

/// The tiny fixture converted once per process: file name → bytes.
fn files() -> &'static HashMap<String, Vec<u8>> {
    static FILES: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-unclip");
        let dir = std::env::temp_dir().join(format!("unclip-fuzz-tiny-{}", std::process::id()));
        unclip::convert::convert(&fixture, &dir, GgmlType::F32, |_| {}).expect("the tiny fixture converts");
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        files
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::from_json(data) else { return };
    let files = files();
    let open = |entry: &unclip::manifest::FileEntry| {
        files.get(&entry.file).cloned().ok_or_else(|| unclip::Error::Model(format!("no file {}", entry.file)))
    };
    let _ = UnCLIPPipeline::load(&Cpu, manifest, open);
});
