//! The GGUF files `unclip convert` writes carry the keys ggml-ecosystem tools expect of a model file (the GGUF spec's
//! `general.*`; docs/formats.md): the architecture, model.json's name and licence, and, where a tensor is quantized,
//! `general.quantization_version` = 2. The reader takes files with or without them (the shipped models predate them).

mod common;

use common::*;
use unclip::gguf::{GgmlType, GgufFile, MetadataValue, QUANTIZATION_VERSION, QUANTIZATION_VERSION_KEY};
use unclip::manifest::open_model_dir;

#[test]
fn converted_files_carry_the_general_keys() {
    for dtype in [GgmlType::F32, GgmlType::Q8_0] {
        let (manifest, mut open) = open_model_dir(&tiny_model(dtype)).unwrap();
        let mut quantized_files = 0;
        for (name, component) in manifest.components() {
            let file = GgufFile::from_bytes(open(&component.weights).unwrap()).unwrap();
            let text = |key: &str| file.metadata_str(key).unwrap().to_string();
            assert_eq!(text("general.architecture"), "unclip", "{name}");
            assert_eq!(text("general.name"), manifest.name, "{name}");
            assert_eq!(text("general.license"), manifest.license, "{name}");
            let quantized = file.tensors().any(|t| t.info.dtype.is_quantized());
            let version = file.metadata(QUANTIZATION_VERSION_KEY);
            assert_eq!(version, quantized.then_some(&MetadataValue::U32(QUANTIZATION_VERSION)), "{name} at {dtype:?}");
            quantized_files += quantized as usize;
        }
        assert_eq!(quantized_files > 0, dtype == GgmlType::Q8_0, "{dtype:?}: {quantized_files} quantized files");
    }
}
