//! The settings a picture was made with, as its PNG carries them (docs/formats.md, "Pictures"): one record
//! ([`ImageSettings`]) built from the run's [`GenerateParams`] (and [`EditParams`], or a remix's inputs), written as
//! JSON in the `unclip` iTXt chunk and as AUTOMATIC1111-style text in the `parameters` one, parsed back from the JSON
//! and held to the same limits as the settings themselves (the page's URL, the CLI's flags). The CLI and the page
//! (through src/web/picture.rs) both write and read pictures through this module; [`crate::png_file`] puts the
//! chunks in the file and finds them again.

use serde::{Deserialize, Serialize};

use crate::edit::EditParams;
use crate::error::{ensure_setting, Error, Result};
use crate::image_processor::MAX_IMAGE_PIXELS;
use crate::manifest::{sha256_hex, Manifest};
use crate::pipeline::Stage;
use crate::settings::{GenerateParams, Sampler};
use crate::tokenizer::MAX_PROMPT_CHARS;

/// `format` of the record.
pub const FORMAT: &str = "unclip-image";
pub const FORMAT_VERSION: u32 = 1;
/// The iTXt keyword of the JSON record.
pub const SETTINGS_KEYWORD: &str = "unclip";
/// The iTXt keyword of the text form (AUTOMATIC1111's "PNG Info").
pub const PARAMETERS_KEYWORD: &str = "parameters";
/// The longest `unclip` chunk read back: two prompts of [`MAX_PROMPT_CHARS`] four-byte characters and the rest fit.
pub const MAX_SETTINGS_BYTES: usize = 1 << 20;
/// What wrote the picture: this crate's name and version.
pub const ENGINE: &str = concat!("unclip ", env!("CARGO_PKG_VERSION"));

pub mod grid;
pub mod step_frames;
pub use grid::{grid_cells, GridAxis, GridRecord};
pub use step_frames::StepFramesRecord;

/// Which model drew the picture: model.json's name, version and the SHA-256 of its bytes (which pins every weight
/// file by its own hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

impl ModelIdentity {
    /// The identity of `manifest`, read from `manifest_json`'s bytes.
    pub fn of(manifest: &Manifest, manifest_json: &[u8]) -> Self {
        ModelIdentity {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            sha256: sha256_hex(manifest_json),
        }
    }

    /// "tiny-unclip 0 (model.json 0123456789…)".
    pub fn describe(&self) -> String {
        format!("{} {} (model.json {}…)", self.name, self.version, &self.sha256[..self.sha256.len().min(10)])
    }
}

/// An img2img or inpainting: how far the source went into the noise, and which pictures it started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRecord {
    pub strength: f32,
    pub resample: usize,
    /// SHA-256 of the source's RGBA8 pixels, row by row ([`pixels_sha256`]), and its size.
    pub source_sha256: String,
    pub source_width: usize,
    pub source_height: usize,
    /// The mask's pixels' SHA-256: present for an inpainting, absent for an img2img.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_sha256: Option<String>,
}

/// A remix's operation (docs/remix.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemixOp {
    Variations,
    Interpolate,
    TextDiff,
}

/// An input of a remix: a prompt, a picture by the SHA-256 of its RGBA8 pixels, or an image embedding (the page's
/// History result) by the SHA-256 of its f32 values, little-endian.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RemixInput {
    Prompt(String),
    ImageSha256(String),
    EmbeddingSha256(String),
}

/// A remix frame, or a strip / animation of all of them: the settings' prompt is then empty (frames decode image
/// embeddings with the empty caption) and the seed is the first frame's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemixRecord {
    pub op: RemixOp,
    /// Which frame (from 0); absent for the strip or the animation of all `frames`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<usize>,
    pub frames: usize,
    /// In the command's order: variations `[image]`; interpolate `[from, to]`; text diff `[picture, from text, to text]`.
    pub inputs: Vec<RemixInput>,
    /// Variations from the image's DDIM-inverted noise.
    #[serde(default)]
    pub invert: bool,
    /// A text diff's largest rotation θ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_theta: Option<f32>,
}

/// One denoising step's picture (`--steps-dir`): of which stage, which step, x_t or x̂0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub stage: String,
    pub i: usize,
    pub t: usize,
    /// "xt" or "x0".
    pub image: String,
}

/// Everything needed to draw a picture again: the settings by their [`GenerateParams`] names, the size, the model,
/// the engine, and what kind of run it was (a generation unless `edit`, `remix` or `step` says otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    pub format: String,
    pub format_version: u32,
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub prior_steps: usize,
    pub decoder_steps: usize,
    pub sr_steps: usize,
    pub prior_guidance: f32,
    pub decoder_guidance: f32,
    pub prior_best_of: usize,
    pub sampler: Sampler,
    pub ddim_eta: f32,
    pub width: usize,
    pub height: usize,
    pub model: ModelIdentity,
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remix: Option<RemixRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRecord>,
    /// An X/Y grid: the record's settings are its base, each cell varies two of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridRecord>,
    /// Every step of one stage of the run, as an animation or a contact sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_frames: Option<StepFramesRecord>,
}

/// SHA-256 of an image's RGBA8 pixels, row-major (what an edit's or a remix's source is known by: the same in the
/// CLI, which decodes a file, and the page, which reads a canvas).
pub fn pixels_sha256(rgba: &[u8]) -> String {
    sha256_hex(rgba)
}

/// SHA-256 of an image embedding's f32 values, little-endian (a remix input given as an embedding).
pub fn embedding_sha256(embedding: &[f32]) -> String {
    sha256_hex(&embedding.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

impl ImageSettings {
    /// The record of a `width`×`height` picture that `model` drew with `p` (an edit with `edit`; a remix frame: set
    /// `remix`).
    pub fn new(
        p: &GenerateParams,
        edit: Option<&EditParams>,
        model: &ModelIdentity,
        width: usize,
        height: usize,
    ) -> Self {
        // every setting, named: a new one does not compile until it is recorded here and read back in `params`
        let GenerateParams {
            prompt,
            negative_prompt,
            seed,
            prior_steps,
            decoder_steps,
            sr_steps,
            prior_guidance,
            decoder_guidance,
            image_embedding: _, // remix frames record their inputs instead (`remix`)
            sampler,
            ddim_eta,
            prior_best_of,
            decoder_latents: _, // inverted noise: remix variations record their source image
        } = p.clone();
        ImageSettings {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            prompt,
            negative_prompt,
            seed,
            prior_steps,
            decoder_steps,
            sr_steps,
            prior_guidance,
            decoder_guidance,
            prior_best_of,
            sampler,
            ddim_eta,
            width,
            height,
            model: model.clone(),
            engine: ENGINE.into(),
            edit: edit.map(|e| EditRecord {
                strength: e.strength,
                resample: e.resample,
                source_sha256: pixels_sha256(&e.image.rgba),
                source_width: e.image.width,
                source_height: e.image.height,
                mask_sha256: e.mask.as_ref().map(|m| pixels_sha256(&m.rgba)),
            }),
            remix: None,
            step: None,
            grid: None,
            step_frames: None,
        }
    }

    /// This record for one step's picture of the run.
    pub fn at_step(&self, stage: Stage, i: usize, t: usize, image: &str, width: usize, height: usize) -> Self {
        let step = Some(StepRecord { stage: stage.name().into(), i, t, image: image.into() });
        ImageSettings { step, width, height, ..self.clone() }
    }

    /// The generation settings (no embedding or initial noise: a record holds neither).
    pub fn params(&self) -> GenerateParams {
        // every field, named: a new setting in the record does not compile until it is read back here
        let ImageSettings {
            format: _,
            format_version: _,
            prompt,
            negative_prompt,
            seed,
            prior_steps,
            decoder_steps,
            sr_steps,
            prior_guidance,
            decoder_guidance,
            prior_best_of,
            sampler,
            ddim_eta,
            width: _,
            height: _,
            model: _,
            engine: _,
            edit: _,
            remix: _,
            step: _,
            grid: _,
            step_frames: _,
        } = self.clone();
        GenerateParams {
            prompt,
            negative_prompt,
            seed,
            prior_steps,
            decoder_steps,
            sr_steps,
            prior_guidance,
            decoder_guidance,
            sampler,
            ddim_eta,
            prior_best_of,
            image_embedding: None,
            decoder_latents: None,
        }
    }

    /// The JSON of the `unclip` chunk: one line, fields in declaration order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a record of strings and numbers serialises")
    }

    /// The record in `json` (the `unclip` chunk of `file`), checked as [`ImageSettings::validate`] checks it; every
    /// refusal is one sentence naming `file`.
    pub fn from_json(json: &str, file: &str) -> Result<Self> {
        let size = json.len();
        ensure_setting(size <= MAX_SETTINGS_BYTES, || {
            format!("{file}'s unclip settings are {size} bytes long, more than the {MAX_SETTINGS_BYTES} unclip writes: the file was changed or made by another program, so give the settings as flags instead")
        })?;
        let record: ImageSettings = serde_json::from_str(json).map_err(|e| {
            Error::Settings(format!("{file}'s unclip settings are not the record unclip writes ({e}): the file was changed or made by another program, so give the settings as flags instead"))
        })?;
        record.validate().map_err(|e| {
            Error::Settings(format!("{file}'s unclip settings cannot be used: {e}; give the settings as flags instead"))
        })?;
        Ok(record)
    }

    /// Refuses a record that the engine could not run, with the sentences of the settings' own checks
    /// ([`GenerateParams::validate`], [`EditParams::check_settings`], the prompt and image size limits).
    pub fn validate(&self) -> Result<()> {
        ensure_setting(self.format == FORMAT && self.format_version == FORMAT_VERSION, || {
            format!(
                "it is format {:?} version {}, and this unclip reads {FORMAT:?} version {FORMAT_VERSION}",
                self.format, self.format_version
            )
        })?;
        self.params().validate()?;
        for (what, text) in [("prompt", &self.prompt), ("negative prompt", &self.negative_prompt)] {
            let n = text.chars().count();
            ensure_setting(n <= MAX_PROMPT_CHARS, || {
                format!("the {what} is {n} characters long; at most {MAX_PROMPT_CHARS} are accepted")
            })?;
        }
        for (what, w, h) in [("the picture", self.width, self.height)]
            .into_iter()
            .chain(self.edit.as_ref().map(|e| ("the edit's source", e.source_width, e.source_height)))
        {
            ensure_setting((1..=MAX_IMAGE_PIXELS).contains(&w.saturating_mul(h)), || {
                format!("{what} is {w}×{h} pixels, and unclip takes from 1 to {MAX_IMAGE_PIXELS} (8192×8192)")
            })?;
        }
        for (what, text) in
            [("model name", &self.model.name), ("model version", &self.model.version), ("engine", &self.engine)]
        {
            ensure_setting(text.len() <= 256, || {
                format!("the {what} is {} bytes long, at most 256 are written", text.len())
            })?;
        }
        check_sha256("model.json's SHA-256", &self.model.sha256)?;
        if let Some(e) = &self.edit {
            EditParams::check_settings(e.strength, e.resample, e.mask_sha256.is_some())?;
            check_sha256("the source picture's SHA-256", &e.source_sha256)?;
            if let Some(mask) = &e.mask_sha256 {
                check_sha256("the mask's SHA-256", mask)?;
            }
        }
        if let Some(r) = &self.remix {
            ensure_setting(r.frames <= 64 && r.inputs.len() <= 3, || {
                format!("a remix of {} frames from {} inputs is more than unclip makes", r.frames, r.inputs.len())
            })?;
            ensure_setting(r.frame.is_none_or(|k| k < r.frames), || "the remix frame is past the last one".into())?;
            for input in &r.inputs {
                match input {
                    RemixInput::Prompt(p) => ensure_setting(p.chars().count() <= MAX_PROMPT_CHARS, || {
                        format!("a remix prompt is longer than {MAX_PROMPT_CHARS} characters")
                    })?,
                    RemixInput::ImageSha256(h) | RemixInput::EmbeddingSha256(h) => {
                        check_sha256("a remix input's SHA-256", h)?
                    }
                }
            }
        }
        if let Some(s) = &self.step {
            ensure_setting(s.stage.len() <= 16 && s.image.len() <= 4, || "the step record names no stage".into())?;
        }
        if let Some(g) = &self.grid {
            g.check(&self.params(), self.width, self.height)?;
        }
        if let Some(f) = &self.step_frames {
            f.check(self.width, self.height)?;
        }
        Ok(())
    }

    /// The `parameters` chunk, as AUTOMATIC1111 writes it: the prompt, a `Negative prompt:` line where there is one,
    /// then one line of `Key: value` pairs.
    pub fn to_parameters(&self) -> String {
        let sampler = match self.sampler {
            Sampler::Ddpm => "DDPM".to_string(),
            Sampler::Ddim if self.ddim_eta == 0.0 => "DDIM".to_string(),
            Sampler::Ddim => format!("DDIM, Eta: {}", self.ddim_eta),
        };
        let mut pairs = vec![
            format!("Prior steps: {}", self.prior_steps),
            format!("Decoder steps: {}", self.decoder_steps),
            format!("Super-res steps: {}", self.sr_steps),
            format!("Prior guidance: {}", self.prior_guidance),
            format!("Decoder guidance: {}", self.decoder_guidance),
            format!("Prior best of: {}", self.prior_best_of),
            format!("Sampler: {sampler}"),
            format!("Seed: {}", self.seed),
            format!("Size: {}x{}", self.width, self.height),
            format!("Model: {} {}", self.model.name, self.model.version),
            format!("Model hash: {}", &self.model.sha256[..self.model.sha256.len().min(10)]),
        ];
        if let Some(e) = &self.edit {
            let kind = if e.mask_sha256.is_some() { "inpaint" } else { "img2img" };
            pairs.push(format!("Edit: {kind}, Denoising strength: {}", e.strength));
            if e.mask_sha256.is_some() {
                pairs.push(format!("Mask: yes, Resample: {}", e.resample));
            }
            pairs.push(format!("Source hash: {}", &e.source_sha256[..10]));
        }
        if let Some(r) = &self.remix {
            let op = serde_json::to_value(r.op).expect("an enum serialises");
            let frame = r.frame.map_or(format!("all {}", r.frames), |k| format!("{} of {}", k + 1, r.frames));
            pairs.push(format!("Remix: {}, Frame: {frame}", op.as_str().unwrap_or("")));
        }
        if let Some(s) = &self.step {
            pairs.push(format!("Step: {} {} t={} {}", s.stage, s.i, s.t, s.image));
        }
        if let Some(g) = &self.grid {
            pairs.push(g.parameters());
        }
        if let Some(f) = &self.step_frames {
            pairs.push(format!("Steps: {}", f.describe()));
        }
        pairs.push(format!("Version: {}", self.engine));
        let negative = if self.negative_prompt.is_empty() {
            String::new()
        } else {
            format!("Negative prompt: {}\n", self.negative_prompt)
        };
        format!("{}\n{negative}{}", self.prompt, pairs.join(", "))
    }

    /// What kind of picture this is, for a sentence: "a generation", "an img2img at strength 0.6", …
    pub fn kind(&self) -> String {
        if let Some(g) = &self.grid {
            return g.kind();
        }
        if let Some(f) = &self.step_frames {
            return format!("the {}", f.describe());
        }
        match (&self.edit, &self.remix, &self.step) {
            (_, _, Some(s)) => format!("step {} of the {} stage ({}) of a run", s.i, s.stage, s.image),
            (_, Some(r), _) => {
                format!("a remix ({})", serde_json::to_value(r.op).unwrap_or_default().as_str().unwrap_or(""))
            }
            (Some(e), _, _) if e.mask_sha256.is_some() => format!("an inpainting at strength {}", e.strength),
            (Some(e), _, _) => format!("an img2img at strength {}", e.strength),
            _ => "a generation".into(),
        }
    }
}

fn check_sha256(what: &str, hex: &str) -> Result<()> {
    ensure_setting(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), || {
        format!("{what} is not 64 hexadecimal digits")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ImageSettings {
        let model = ModelIdentity { name: "tiny-unclip".into(), version: "0".into(), sha256: "ab".repeat(32) };
        let p =
            GenerateParams { prompt: "horse".into(), negative_prompt: "a dog".into(), seed: 3, ..Default::default() };
        ImageSettings::new(&p, None, &model, 256, 256)
    }

    #[test]
    fn json_round_trips_and_keeps_every_setting() {
        let r = record();
        let back = ImageSettings::from_json(&r.to_json(), "x.png").unwrap();
        assert_eq!(back, r);
        assert_eq!(
            back.params(),
            GenerateParams { prompt: "horse".into(), negative_prompt: "a dog".into(), seed: 3, ..Default::default() }
        );
    }

    #[test]
    fn every_setting_survives_the_record() {
        let d = GenerateParams::default();
        let p = GenerateParams {
            prompt: "horse".into(),
            negative_prompt: "a dog".into(),
            seed: d.seed + 7,
            prior_steps: d.prior_steps + 1,
            decoder_steps: d.decoder_steps + 2,
            sr_steps: d.sr_steps + 3,
            prior_guidance: d.prior_guidance + 0.5,
            decoder_guidance: d.decoder_guidance + 0.25,
            image_embedding: None,
            sampler: Sampler::Ddim,
            ddim_eta: 0.3,
            prior_best_of: d.prior_best_of + 1,
            decoder_latents: None,
        };
        // the settings a record holds all differ from the defaults, so one left out would show
        let recorded = serde_json::to_value(&p).unwrap();
        let defaults = serde_json::to_value(&d).unwrap();
        for (key, value) in recorded.as_object().unwrap() {
            assert!(value.is_null() || *value != defaults[key], "{key} is at its default");
        }
        let record = ImageSettings::new(&p, None, &record().model, 64, 64);
        assert_eq!(ImageSettings::from_json(&record.to_json(), "x.png").unwrap().params(), p);
    }

    #[test]
    fn parameters_text_is_a1111_shaped() {
        let text = record().to_parameters();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "horse");
        assert_eq!(lines[1], "Negative prompt: a dog");
        assert!(lines[2].starts_with("Prior steps: 25, Decoder steps: 25, Super-res steps: 7, Prior guidance: 4, Decoder guidance: 8, Prior best of: 1, Sampler: DDPM, Seed: 3, Size: 256x256, Model: tiny-unclip 0, Model hash: abababab"), "{}", lines[2]);
        assert!(lines[2].ends_with(&format!("Version: {ENGINE}")));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn hostile_records_get_one_sentence() {
        let json = record().to_json();
        for (bad, needle) in [
            (json.replace("\"seed\":3", "\"seed\":3,\"evil\":1"), "unknown field `evil`"),
            (json.replace("\"prior_guidance\":4.0", "\"prior_guidance\":NaN"), "not the record unclip writes"),
            (json.replace("\"prior_guidance\":4.0", "\"prior_guidance\":1e300"), "prior guidance must be a number"),
            (json.replace("\"decoder_steps\":25", "\"decoder_steps\":99999999999"), "decoder steps must be between"),
            (json.replace("\"width\":256", "\"width\":0"), "0×256 pixels"),
            (json.replace("\"format_version\":1", "\"format_version\":7"), "version 7"),
            (json.replace(&"ab".repeat(32), "zz"), "64 hexadecimal"),
            (" ".repeat(MAX_SETTINGS_BYTES + 1), "bytes long"),
        ] {
            let e = ImageSettings::from_json(&bad, "x.png").unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.starts_with("x.png's unclip settings") && !e.contains('\n'),
                "{needle}: {e}"
            );
        }
    }
}
