//! `unclip convert`: a diffusers `UnCLIPPipeline` folder (model_index.json, one folder per component
//! with config.json + safetensors, tokenizer) → an unclip model directory (model.json, one GGUF per
//! component, tokenizer.json). Tensor names are the state-dict keys verbatim.
//!
//! Tensor types: 1-D tensors (biases, norms) and parameters stay f32; embedding tables are f16 unless
//! f32 is asked for, or q8_0 (whose rows the engine dequantizes at load like f16's: measured harmless for
//! unclip-emoji's text tower in docs/model-card.md, "Download size"); Linear and Conv2d weights take the requested type. Quantized blocks run along a
//! weight's rows, so a quantized conv kernel (out, in, kh, kw) is stored as the (out, in·kh·kw) matrix
//! of implicit-GEMM convolution; a row whose length is not a multiple of 32 falls back to f16.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gguf::{GgmlType, GgufWriter, MetadataValue};
use crate::image_processor::ClipImageProcessorConfig;
use crate::manifest::{
    open_model_dir, Attribution, Component, FileEntry, ImageProcessorEntry, Manifest, Recommended, SchedulerEntry,
    TokenizerEntry, FORMAT, FORMAT_VERSION,
};
use crate::settings::GenerateParams;

/// The components of an unCLIP pipeline folder, in pipeline order; `image_encoder` is optional, and so is
/// `prior` (with `prior_scheduler`) when there is an image encoder (an `UnCLIPImageVariationPipeline`).
pub const COMPONENTS: [&str; 7] =
    ["text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last", "image_encoder"];
pub const SCHEDULERS: [&str; 3] = ["prior_scheduler", "decoder_scheduler", "super_res_scheduler"];

/// Optional `unclip.json` beside model_index.json: the name, version, licence, attribution and recommended
/// settings a converted model carries into model.json.
#[derive(Debug, Default, serde::Deserialize)]
struct ModelInfo {
    name: Option<String>,
    version: Option<String>,
    license: Option<String>,
    #[serde(default)]
    attribution: Vec<Attribution>,
    /// The settings the model recommends over diffusers' defaults (checked when model.json is read).
    #[serde(default)]
    recommended: Recommended,
    /// Overrides for the image encoder's processing (see [`image_processor`]).
    image_processor: Option<ImageProcessorInfo>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ImageProcessorInfo {
    /// A `preprocessor_config.json` body.
    config: Option<Value>,
    normalize_embeddings: Option<bool>,
}

pub fn parse_dtype(s: &str) -> Result<GgmlType> {
    match s {
        "f32" => Ok(GgmlType::F32),
        "f16" => Ok(GgmlType::F16),
        "q8_0" => Ok(GgmlType::Q8_0),
        "q4_0" => Ok(GgmlType::Q4_0),
        other => Err(Error::Settings(format!("--dtype `{other}` is not one of f32, f16, q8_0, q4_0"))),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn read_json(path: &Path, what: &'static str) -> Result<Value> {
    serde_json::from_slice(&read(path)?).map_err(|source| Error::Json {
        path: path.display().to_string(),
        what,
        source,
    })
}

/// Writes one file of the staging directory, on disk (fsync) before the directory is swapped in.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| Error::io(path, e))
}

/// `dir`'s sibling `.{name}.{what}-{pid}`: on the same file system, so a rename moves it in one step.
fn sibling(dir: &Path, what: &str) -> std::path::PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(format!(".{name}.{what}-{}", std::process::id()))
}

/// Replaces `out` by the complete `staging` directory: the old model stays whole until the new one is, and
/// only a model directory (one with model.json) or an empty folder is ever replaced.
fn swap_in(staging: &Path, out: &Path) -> Result<()> {
    let old = sibling(out, "replaced");
    let had_model = out.exists();
    if had_model {
        std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
    }
    if let Err(e) = std::fs::rename(staging, out) {
        if had_model {
            let _ = std::fs::rename(&old, out); // put the old model back
        }
        return Err(Error::io(out, e));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all()); // the renames, on disk
    }
    if had_model {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Converts `src` (a diffusers UnCLIP folder) into the model directory `out`, atomically: everything is written
/// to a staging folder beside `out` and checked, and only then swapped in, so a failure (a truncated component,
/// a full disk) leaves whatever model `out` held working. `out` must be new, empty, or a model directory.
pub fn convert(src: &Path, out: &Path, dtype: GgmlType, progress: impl FnMut(&str)) -> Result<Manifest> {
    if out.exists() {
        let is_model = out.join("model.json").is_file();
        let empty = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none();
        if !is_model && !empty {
            return Err(Error::Settings(format!(
                "{} exists and is not a model directory (it has no model.json): convert into a new or empty folder, or into a model directory to replace it",
                out.display()
            )));
        }
    }
    let staging = sibling(out, "converting");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let converted = convert_into(src, &staging, dtype, progress).and_then(|manifest| {
        // what the engine will read, read back: every file against its hash, every GGUF header parsed
        let (written, mut open) = open_model_dir(&staging)?;
        open(&written.tokenizer.file)?;
        for (_, c) in written.components() {
            crate::gguf::GgufFile::from_bytes(open(&c.weights)?)?;
        }
        Ok(manifest)
    });
    match converted {
        Ok(manifest) => {
            if out.exists() && out.read_dir().map_err(|e| Error::io(out, e))?.next().is_none() {
                std::fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
            }
            swap_in(&staging, out).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&staging);
            })?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// How a tensor is stored, from its name and shape.
enum Role {
    /// Biases, norms, parameters: f32.
    Float,
    /// Lookup tables: f16 unless f32 or q8_0 is requested.
    Table,
    /// Linear / Conv2d weights: the requested type.
    Matrix,
}

fn role(name: &str, shape: &[usize]) -> Role {
    let Some(stem) = name.strip_suffix(".weight") else { return Role::Float };
    match shape.len() {
        4 => Role::Matrix,
        2 if stem.ends_with("embedding") || stem.ends_with("embeddings") => Role::Table,
        2 => Role::Matrix,
        _ => Role::Float,
    }
}

/// The stored (type, shape) of a tensor for the requested dtype.
pub fn storage(name: &str, shape: &[usize], dtype: GgmlType) -> (GgmlType, Vec<usize>) {
    let half = if dtype == GgmlType::F32 { GgmlType::F32 } else { GgmlType::F16 };
    match role(name, shape) {
        Role::Float => (GgmlType::F32, shape.to_vec()),
        Role::Table if dtype == GgmlType::Q8_0 && shape[1].is_multiple_of(dtype.block_len()) => (dtype, shape.to_vec()),
        Role::Table => (half, shape.to_vec()),
        Role::Matrix if matches!(dtype, GgmlType::F32 | GgmlType::F16) => (dtype, shape.to_vec()),
        Role::Matrix => {
            let row: usize = shape[1..].iter().product();
            if row.is_multiple_of(dtype.block_len()) {
                (dtype, vec![shape[0], row])
            } else {
                (half, shape.to_vec())
            }
        }
    }
}

/// Bytes a tensor takes in a converted model (the storage rules above).
pub fn stored_bytes(name: &str, shape: &[usize], dtype: GgmlType) -> u64 {
    let (ty, stored) = storage(name, shape, dtype);
    ty.n_bytes(stored.iter().product::<usize>() as u64).unwrap_or(u64::MAX)
}

/// A state-dict entry: key, shape, values.
type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Reads every tensor of a safetensors file as f32 (F32, F16 and BF16 are accepted).
fn read_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = read(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Weights(format!("{} is not a valid safetensors file: {e}", path.display())))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => {
                data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            safetensors::Dtype::F16 => {
                data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            safetensors::Dtype::BF16 => {
                data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            other => {
                return Err(Error::Weights(format!(
                    "{}: tensor `{name}` is {other:?}; only F32, F16 and BF16 weights can be converted",
                    path.display()
                )))
            }
        };
        out.push((name, view.shape().to_vec(), values));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn component_weights(dir: &Path) -> Result<std::path::PathBuf> {
    ["diffusion_pytorch_model.safetensors", "model.safetensors"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::Model(format!(
                "{} has no diffusion_pytorch_model.safetensors or model.safetensors (PyTorch .bin files are not read: re-save with safe_serialization=True)",
                dir.display()
            ))
        })
}

/// The licence written where `unclip.json` names none.
pub const UNKNOWN_LICENSE: &str = "see the licence of the source checkpoint";

/// The model every GGUF file of a model directory names in ggml's `general.name` and `general.license` (the GGUF
/// spec's keys; model.json's `name` and `license`).
#[derive(Debug, Clone, Copy)]
pub struct GgufModel<'a> {
    pub name: &'a str,
    pub license: &'a str,
}

/// Converts one component folder (config + safetensors) of `model` to GGUF bytes.
pub fn convert_component(
    dir: &Path,
    model: GgufModel,
    name: &str,
    class: &str,
    config: &Value,
    dtype: GgmlType,
) -> Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", MetadataValue::String("unclip".into()))?;
    w.add_metadata("general.name", MetadataValue::String(model.name.into()))?;
    w.add_metadata("general.license", MetadataValue::String(model.license.into()))?;
    w.add_metadata("unclip.component", MetadataValue::String(name.into()))?;
    w.add_metadata("unclip.class", MetadataValue::String(class.into()))?;
    w.add_metadata("unclip.config", MetadataValue::String(config.to_string()))?;
    for (tensor, shape, values) in read_safetensors(&component_weights(dir)?)? {
        let (ty, stored) = storage(&tensor, &shape, dtype);
        w.add_tensor(&tensor, &stored, ty, &values)?;
    }
    let mut bytes = Vec::new();
    w.write(&mut bytes)?;
    Ok(bytes)
}

/// The CLIP BPE `tokenizer.json` equivalent to `CLIPTokenizer(vocab.json, merges.txt)` padded and
/// truncated to `max_length` (docs/math.md §2).
fn clip_tokenizer_json(tok_dir: &Path, max_length: usize) -> Result<Vec<u8>> {
    let vocab = read_json(&tok_dir.join("vocab.json"), "a CLIP vocab")?;
    let merges_path = tok_dir.join("merges.txt");
    let merges_text = String::from_utf8(read(&merges_path)?)
        .map_err(|_| Error::Tokenizer(format!("{} is not UTF-8", merges_path.display())))?;
    let merges: Vec<&str> =
        merges_text.lines().filter(|l| !l.starts_with("#version") && !l.trim().is_empty()).collect();
    let config_path = tok_dir.join("tokenizer_config.json");
    let config = if config_path.exists() { read_json(&config_path, "a tokenizer config")? } else { Value::Null };
    let token = |key: &str, default: &str| -> String {
        match &config[key] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("content").and_then(Value::as_str).unwrap_or(default).to_string(),
            _ => default.to_string(),
        }
    };
    let (bos, eos, pad, unk) = (
        token("bos_token", "<|startoftext|>"),
        token("eos_token", "<|endoftext|>"),
        token("pad_token", "<|endoftext|>"),
        token("unk_token", "<|endoftext|>"),
    );
    let id = |t: &str| -> Result<u64> {
        vocab[t]
            .as_u64()
            .ok_or_else(|| Error::Tokenizer(format!("{} has no token `{t}`", tok_dir.join("vocab.json").display())))
    };
    let special = |t: &str| -> Result<Value> {
        Ok(
            serde_json::json!({"id": id(t)?, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        )
    };
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": max_length, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": max_length}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": id(&pad)?, "pad_type_id": 0, "pad_token": pad},
        "added_tokens": [special(&bos)?, special(&eos)?],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [eos, id(&eos)?], "cls": [bos, id(&bos)?], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    Ok(serde_json::to_vec(&json).expect("JSON values serialize"))
}

/// Writes the model directory of `src` into the (staging) folder `out`.
fn convert_into(src: &Path, out: &Path, dtype: GgmlType, mut progress: impl FnMut(&str)) -> Result<Manifest> {
    let index = read_json(&src.join("model_index.json"), "a diffusers model_index.json")?;
    let info: ModelInfo = match src.join("unclip.json") {
        p if p.exists() => serde_json::from_value(read_json(&p, "unclip.json")?).map_err(|source| Error::Json {
            path: p.display().to_string(),
            what: "unclip.json",
            source,
        })?,
        _ => ModelInfo::default(),
    };
    GenerateParams::default()
        .with(&info.recommended)
        .validate()
        .map_err(|e| Error::Settings(format!("unclip.json's recommended settings: {e}")))?;
    let dir_name = src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "unclip-model".into());
    let name = info.name.unwrap_or(dir_name);
    let license = info.license.unwrap_or_else(|| UNKNOWN_LICENSE.into());
    let model = GgufModel { name: &name, license: &license };

    let mut components = serde_json::Map::new();
    for name in COMPONENTS {
        let dir = src.join(name);
        let Some(class) = index[name].get(1).and_then(Value::as_str) else {
            let has_image_encoder = index["image_encoder"].get(1).is_some();
            if name == "image_encoder" || (name == "prior" && has_image_encoder) {
                continue;
            }
            return Err(Error::Model(format!("{}/model_index.json has no `{name}` component", src.display())));
        };
        progress(&format!("converting {name} ({class})"));
        let mut config = read_json(&dir.join("config.json"), "a component config")?;
        if let Value::Object(o) = &mut config {
            o.retain(|k, _| !k.starts_with('_') && k != "architectures" && k != "transformers_version");
        }
        let bytes = convert_component(&dir, model, name, class, &config, dtype)?;
        let file = format!("{name}.gguf");
        write(&out.join(&file), &bytes)?;
        let entry = Component { class: class.to_string(), config, weights: FileEntry::describe(&file, &bytes) };
        components.insert(name.to_string(), serde_json::to_value(entry).expect("components serialize"));
    }
    for name in SCHEDULERS {
        if name == "prior_scheduler" && !components.contains_key("prior") {
            continue;
        }
        let mut config = read_json(&src.join(name).join("scheduler_config.json"), "a scheduler config")?;
        let class = config["_class_name"].as_str().unwrap_or("UnCLIPScheduler").to_string();
        if let Value::Object(o) = &mut config {
            o.retain(|k, _| !k.starts_with('_'));
        }
        components.insert(
            name.to_string(),
            serde_json::to_value(SchedulerEntry { class, config }).expect("schedulers serialize"),
        );
    }

    if let Some(encoder) = components.get("image_encoder") {
        let entry = image_processor(src, &encoder["config"], info.image_processor.unwrap_or_default(), &mut progress)?;
        components.insert("image_processor".into(), serde_json::to_value(entry).expect("entries serialize"));
    }

    // The tokenizer pads to the prior's token count (without a prior: the text encoder's positions, as
    // the image-variation pipeline pads to the tokenizer's model_max_length, 77 for CLIP).
    let max_length = match components.get("prior") {
        Some(prior) => prior["config"]["num_embeddings"]
            .as_u64()
            .ok_or_else(|| Error::Model("the prior config has no num_embeddings".into()))?,
        None => components["text_encoder"]["config"]["max_position_embeddings"].as_u64().ok_or_else(|| {
            Error::Model("the text encoder config has no max_position_embeddings to pad prompts to".into())
        })?,
    } as usize;
    let tok_dir = src.join("tokenizer");
    let tokenizer_json = if tok_dir.join("tokenizer.json").exists() {
        read(&tok_dir.join("tokenizer.json"))?
    } else if tok_dir.join("vocab.json").exists() && tok_dir.join("merges.txt").exists() {
        clip_tokenizer_json(&tok_dir, max_length)?
    } else {
        return Err(Error::Model(format!(
            "{} has neither tokenizer.json nor vocab.json + merges.txt",
            tok_dir.display()
        )));
    };
    crate::tokenizer::Tokenizer::from_json(&tokenizer_json, max_length)?; // it must load
    write(&out.join("tokenizer.json"), &tokenizer_json)?;

    let mut manifest = serde_json::json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": info.version.unwrap_or_else(|| "0".into()),
        "license": license,
        "attribution": info.attribution,
        "recommended": info.recommended,
        "tokenizer": TokenizerEntry { file: FileEntry::describe("tokenizer.json", &tokenizer_json), max_length },
    });
    manifest.as_object_mut().expect("an object").extend(components);
    let manifest: Manifest = serde_json::from_value(manifest)
        .map_err(|e| Error::Model(format!("the converted manifest is incomplete: {e}")))?;
    write(&out.join("model.json"), manifest.to_json().as_bytes())?;
    Ok(manifest)
}

/// The image encoder's processing: `feature_extractor/preprocessor_config.json` when the folder has one
/// (diffusers' image-variation layout; embeddings used as the tower gives them), else the unclip-emoji
/// export's convention (x / 127.5 − 1 at the tower's size, unit embeddings); `unclip.json`'s
/// `image_processor` {config, normalize_embeddings} overrides either.
fn image_processor(
    src: &Path,
    encoder_config: &Value,
    info: ImageProcessorInfo,
    progress: &mut impl FnMut(&str),
) -> Result<ImageProcessorEntry> {
    let path = src.join("feature_extractor").join("preprocessor_config.json");
    let (mut config, mut normalize_embeddings) = if path.exists() {
        (read_json(&path, "an image processor config")?, false)
    } else {
        let size = encoder_config["image_size"].as_u64().unwrap_or(224) as usize;
        progress(&format!(
            "image_encoder: no feature_extractor/preprocessor_config.json, using the unclip-emoji convention (resize to {size}×{size}, x / 127.5 − 1, unit embeddings)"
        ));
        (serde_json::to_value(ClipImageProcessorConfig::signed_unit(size)).expect("configs serialize"), true)
    };
    config = info.config.unwrap_or(config);
    normalize_embeddings = info.normalize_embeddings.unwrap_or(normalize_embeddings);
    let class = config["image_processor_type"].as_str().unwrap_or("CLIPImageProcessor").to_string();
    serde_json::from_value::<ClipImageProcessorConfig>(config.clone())
        .map_err(|e| Error::Model(format!("{} is not a CLIPImageProcessor config: {e}", path.display())))?;
    Ok(ImageProcessorEntry { class, config, normalize_embeddings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_follows_the_rules_of_the_module_doc() {
        use GgmlType::{F16, F32, Q4_0, Q8_0};
        let table = "text_model.embeddings.token_embedding.weight";
        assert_eq!(storage("a.bias", &[64], Q4_0), (F32, vec![64]));
        assert_eq!(storage(table, &[100, 64], F32), (F32, vec![100, 64]));
        assert_eq!(storage(table, &[100, 64], Q4_0), (F16, vec![100, 64]), "a table is f16 under q4_0");
        assert_eq!(storage(table, &[100, 64], Q8_0), (Q8_0, vec![100, 64]), "and q8_0 under q8_0");
        assert_eq!(storage(table, &[100, 48], Q8_0), (F16, vec![100, 48]), "unless its rows are not whole blocks");
        assert_eq!(storage("conv.weight", &[8, 32, 3, 3], Q8_0), (Q8_0, vec![8, 288]), "a conv kernel as a matrix");
        assert_eq!(storage("conv.weight", &[8, 3, 3, 3], Q4_0), (F16, vec![8, 3, 3, 3]), "27-long rows: f16");
        assert_eq!(storage("proj.weight", &[8, 40], F16), (F16, vec![8, 40]));
    }
}
