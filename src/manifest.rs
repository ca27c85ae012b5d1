//! `model.json`: what a model directory holds. One entry per component with its diffusers class,
//! its config (the class's `config.json`, unchanged), its GGUF file, byte size and SHA-256; the
//! schedulers' configs; the tokenizer file; name, version, licence and attribution.
//!
//! The browser downloads exactly the files listed here and verifies each against its hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::settings::GenerateParams;
pub use crate::settings::Recommended;

pub const FORMAT: &str = "unclip-model";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attribution {
    pub name: String,
    pub license: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A file of the model directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A network component: class, config and weights file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Component {
    pub class: String,
    pub config: serde_json::Value,
    #[serde(flatten)]
    pub weights: FileEntry,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchedulerEntry {
    pub class: String,
    pub config: serde_json::Value,
}

/// The image encoder's preprocessing (`feature_extractor/preprocessor_config.json`, unchanged) and
/// post-processing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageProcessorEntry {
    /// "CLIPImageProcessor".
    pub class: String,
    pub config: serde_json::Value,
    /// L2-normalise `image_embeds` before they condition the decoder: unclip-emoji trains its prior and
    /// decoder on unit embeddings; diffusers' Karlo image variations use them as the tower gives them.
    pub normalize_embeddings: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenizerEntry {
    #[serde(flatten)]
    pub file: FileEntry,
    /// Every prompt is padded/truncated to this many tokens (= the prior's `num_embeddings`).
    pub max_length: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub license: String,
    #[serde(default)]
    pub attribution: Vec<Attribution>,
    pub tokenizer: TokenizerEntry,
    pub text_encoder: Component,
    /// Absent in image-variation checkpoints (diffusers' `UnCLIPImageVariationPipeline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Component>,
    pub text_proj: Component,
    pub decoder: Component,
    pub super_res_first: Component,
    pub super_res_last: Component,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_encoder: Option<Component>,
    /// How pixels become the image encoder's input, and what is done with its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_processor: Option<ImageProcessorEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_scheduler: Option<SchedulerEntry>,
    pub decoder_scheduler: SchedulerEntry,
    pub super_res_scheduler: SchedulerEntry,
    /// Settings this model recommends over diffusers' defaults.
    #[serde(default, skip_serializing_if = "Recommended::is_empty")]
    pub recommended: Recommended,
}

impl Manifest {
    /// Parses and validates `model.json`.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(json)
            .map_err(|e| Error::Model(format!("model.json is not a valid unclip model manifest: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }

    /// The network components in pipeline order, with their names.
    pub fn components(&self) -> Vec<(&'static str, &Component)> {
        let mut v = vec![("text_encoder", &self.text_encoder)];
        if let Some(prior) = &self.prior {
            v.push(("prior", prior));
        }
        v.extend([
            ("text_proj", &self.text_proj),
            ("decoder", &self.decoder),
            ("super_res_first", &self.super_res_first),
            ("super_res_last", &self.super_res_last),
        ]);
        if let Some(image) = &self.image_encoder {
            v.push(("image_encoder", image));
        }
        v
    }

    /// Every file to download: the tokenizer, then each component's weights.
    pub fn files(&self) -> Vec<&FileEntry> {
        std::iter::once(&self.tokenizer.file).chain(self.components().into_iter().map(|(_, c)| &c.weights)).collect()
    }

    pub fn total_bytes(&self) -> u64 {
        self.files().iter().map(|f| f.bytes).sum()
    }

    fn validate(&self) -> Result<()> {
        if self.format != FORMAT || self.format_version != FORMAT_VERSION {
            return Err(Error::Model(format!(
                "model.json declares format `{}` version {}; this build reads `{FORMAT}` version {FORMAT_VERSION}",
                self.format, self.format_version
            )));
        }
        for f in self.files() {
            f.validate()?;
        }
        if self.prior.is_none() && self.image_encoder.is_none() {
            return Err(Error::Model(
                "model.json has neither a prior (prompt → image) nor an image encoder (image variations), so it cannot make anything: convert the model again".into(),
            ));
        }
        if self.prior.is_some() != self.prior_scheduler.is_some() {
            return Err(Error::Model("model.json must list the prior and the prior_scheduler together".into()));
        }
        if !(1..=512).contains(&self.tokenizer.max_length) {
            return Err(Error::Model(format!(
                "model.json: tokenizer max_length {} is outside 1..=512",
                self.tokenizer.max_length
            )));
        }
        GenerateParams::default()
            .with(&self.recommended)
            .validate()
            .map_err(|e| Error::Model(format!("model.json's recommended settings: {e}")))
    }
}

/// Reads a model directory on disk (what `unclip convert` writes): its manifest, and a reader of each file it lists,
/// which verifies the bytes against the listed size and hash.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::type_complexity)] // an `impl FnMut` cannot be named by a type alias
pub fn open_model_dir(dir: &std::path::Path) -> Result<(Manifest, impl FnMut(&FileEntry) -> Result<Vec<u8>>)> {
    let manifest_path = dir.join("model.json");
    if !manifest_path.exists() {
        return Err(Error::Model(format!(
            "{} has no model.json: point --model at a directory made by `unclip convert`",
            dir.display()
        )));
    }
    let manifest = Manifest::from_json(&read_file(&manifest_path)?)?;
    let dir = dir.to_path_buf();
    Ok((manifest, move |f: &FileEntry| {
        let bytes = read_file(&dir.join(&f.file))?;
        f.verify(&bytes)?;
        Ok(bytes)
    }))
}

#[cfg(not(target_arch = "wasm32"))]
fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

impl FileEntry {
    /// Builds the entry for `bytes` stored as `file`.
    pub fn describe(file: &str, bytes: &[u8]) -> Self {
        FileEntry { file: file.to_string(), bytes: bytes.len() as u64, sha256: sha256_hex(bytes) }
    }

    fn validate(&self) -> Result<()> {
        let plain = !self.file.is_empty()
            && self.file.len() <= 128
            && self.file.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !self.file.starts_with('.');
        if !plain {
            return Err(Error::Model(format!(
                "model.json names the file `{}`; file names must be plain names in the model directory (letters, digits, . _ -)",
                self.file
            )));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Model(format!(
                "model.json: `{}` has sha256 `{}`, expected 64 hex digits",
                self.file, self.sha256
            )));
        }
        Ok(())
    }

    /// Checks downloaded or read bytes against this entry.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.bytes {
            return Err(Error::SizeMismatch(format!(
                "{} should be {} bytes but is {} bytes: the file is truncated or replaced; fetch it again",
                self.file,
                self.bytes,
                bytes.len()
            )));
        }
        let got = sha256_hex(bytes);
        if !got.eq_ignore_ascii_case(&self.sha256) {
            return Err(Error::HashMismatch(format!(
                "model.json lists {} with sha256 {}…, the file hashes to {}…; it is corrupt or from another model version: fetch it again",
                self.file,
                &self.sha256[..12],
                &got[..12]
            )));
        }
        Ok(())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
