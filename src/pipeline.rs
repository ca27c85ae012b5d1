//! The unCLIP loop (diffusers `UnCLIPPipeline.__call__`, spec §4–§12):
//!
//!   prompt → tokenizer → text encoder → PRIOR (CFG) → image embedding → text_proj
//!          → DECODER (CFG, learned variance) → bicubic-AA upsample → SUPER-RES → image
//!
//! with the same RNG draw order as diffusers, so a seed reproduces `torch.Generator().manual_seed`.
//! Every step reports x_t, the model's prediction and x̂0 to an [`Observer`], which may cancel.

use std::future::Future;

use crate::backend::{Backend, Tensor};
use crate::edit::{settle, EditParams, MaskCut, Settled, StageEdit};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::manifest::{Component, FileEntry, Manifest, SchedulerEntry};
use crate::models::*;
use crate::nn::{resize::resize_bicubic_aa, Weights};
use crate::rng::TorchGenerator;
use crate::schedulers::{
    ddim_step_coefficients, PredictionType, StepCoefficients, UnCLIPScheduler, UnCLIPSchedulerConfig, VarianceType,
};
use crate::time::now_ms;
use crate::tokenizer::{Tokenizer, Tokens};

/// The stages a generation goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Text,
    Prior,
    /// DDIM inversion of the decoder: an image → the noise x_T that decodes to it (image variations).
    Inversion,
    Decoder,
    SuperRes,
}

impl Stage {
    /// The stage's name in events, file names and the page ("text", "prior", "decoder", "super_res").
    pub fn name(self) -> &'static str {
        match self {
            Stage::Text => "text",
            Stage::Prior => "prior",
            Stage::Inversion => "inversion",
            Stage::Decoder => "decoder",
            Stage::SuperRes => "super_res",
        }
    }
}

/// One denoising step.
pub struct StepEvent<'a, T> {
    pub stage: Stage,
    /// 0-based step index of `n`.
    pub i: usize,
    pub n: usize,
    /// The training timestep of this step.
    pub t: usize,
    /// The sample fed to the model at t (x_t).
    pub sample: &'a T,
    /// The (guided) model output: ε̂ for the decoder and super-res, x̂0 for the prior.
    pub model_output: &'a T,
    /// The predicted clean sample x̂0 (clipped).
    pub pred_x0: &'a T,
    /// The sample after the step (x_{t-1}).
    pub prev_sample: &'a T,
    /// Under classifier-free guidance: the unconditional and conditional predictions that
    /// `model_output` = uncond + g·(cond − uncond) combines.
    pub guidance: Option<[&'a T; 2]>,
    /// Milliseconds since the stage started.
    pub elapsed_ms: f64,
}

impl<'a, T> StepEvent<'a, T> {
    /// Step i of `timesteps`; tensors = [x_t, model output, x̂0, x_{t-1}]; `start` = the stage's start.
    pub(crate) fn new(
        stage: Stage,
        i: usize,
        timesteps: &[usize],
        [sample, model_output, pred_x0, prev_sample]: [&'a T; 4],
        start: f64,
    ) -> Self {
        let elapsed_ms = now_ms() - start;
        StepEvent {
            stage,
            i,
            n: timesteps.len(),
            t: timesteps[i],
            sample,
            model_output,
            pred_x0,
            prev_sample,
            elapsed_ms,
            guidance: None,
        }
    }

    pub(crate) fn with_guidance(self, parts: Option<&'a Guided<T>>) -> Self {
        StepEvent { guidance: parts.map(|g| [&g.uncond, &g.cond]), ..self }
    }
}

pub enum Event<'a, T> {
    StageStart { stage: Stage, steps: usize },
    Step(StepEvent<'a, T>),
    StageEnd { stage: Stage, elapsed_ms: f64 },
    Warning(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Cancel,
}

/// Receives every event; returning `Flow::Cancel` stops the generation before the next step.
pub trait Observer<T> {
    fn on_event(&mut self, event: Event<'_, T>) -> impl Future<Output = Flow>;
}

/// Sends an event; a cancelling observer ends the enclosing function with `Error::Cancelled`.
macro_rules! emit {
    ($obs:expr, $e:expr) => {
        if $obs.on_event($e).await == $crate::pipeline::Flow::Cancel {
            return Err($crate::Error::Cancelled);
        }
    };
}
pub(crate) use emit;

/// Ignores every event.
pub struct Silent;

impl<T> Observer<T> for Silent {
    async fn on_event(&mut self, _: Event<'_, T>) -> Flow {
        Flow::Continue
    }
}

/// How each denoising step moves from x_t to x_{t-1}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// UnCLIPScheduler's ancestral step (DDPM with the model's variance), as diffusers runs unCLIP.
    #[default]
    Ddpm,
    /// DDIM with η = 0 on the same timesteps: deterministic after the initial noise.
    Ddim,
}

/// What to generate. Defaults are diffusers' (25/25/7 steps, guidance 4.0/8.0, seed 0, DDPM).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateParams {
    pub prompt: String,
    /// The caption of the unconditional half of classifier-free guidance, in the prior and the decoder, instead
    /// of the empty one: what the picture should not look like. "" is diffusers' behaviour.
    pub negative_prompt: String,
    pub seed: u64,
    pub prior_steps: usize,
    pub decoder_steps: usize,
    pub sr_steps: usize,
    pub prior_guidance: f32,
    pub decoder_guidance: f32,
    /// An image embedding to decode instead of running the prior (variations, interpolation).
    pub image_embedding: Option<Vec<f32>>,
    /// The sampler of the decoder and super-res stages (the prior always runs unCLIP's own step, so
    /// DDPM and DDIM runs from one seed share the prior and the decoder's initial noise).
    pub sampler: Sampler,
    /// DDIM's stochasticity η (0 = deterministic, 1 = DDPM-like); used when `sampler` is DDIM.
    pub ddim_eta: f32,
    /// The prior draws this many image embeddings and keeps the one most similar to the text
    /// embedding (DALL·E 2 §2.2 uses 2); 1 = plain sampling, as diffusers.
    pub prior_best_of: usize,
    /// The decoder's initial noise x_T (C·S·S values) instead of a draw from the seed, e.g. from
    /// DDIM inversion of an image; the generator then skips that draw.
    pub decoder_latents: Option<Vec<f32>>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
            prior_steps: 25,
            decoder_steps: 25,
            sr_steps: 7,
            prior_guidance: 4.0,
            decoder_guidance: 8.0,
            image_embedding: None,
            sampler: Sampler::Ddpm,
            ddim_eta: 0.0,
            prior_best_of: 1,
            decoder_latents: None,
        }
    }
}

pub const MAX_STEPS: usize = 1000;
pub const MAX_GUIDANCE: f32 = 100.0;
pub const MAX_BEST_OF: usize = 16;

impl GenerateParams {
    /// Refuses settings that cannot run or would produce NaN, with a sentence saying why.
    pub fn validate(&self) -> Result<()> {
        for (name, steps) in
            [("prior", self.prior_steps), ("decoder", self.decoder_steps), ("super-res", self.sr_steps)]
        {
            if !(2..=MAX_STEPS).contains(&steps) {
                return Err(Error::Settings(format!(
                    "{name} steps must be between 2 and {MAX_STEPS} (got {steps}): the unCLIP scheduler spaces steps from t=999 to t=0"
                )));
            }
        }
        for (name, g) in [("prior", self.prior_guidance), ("decoder", self.decoder_guidance)] {
            if !g.is_finite() || !(0.0..=MAX_GUIDANCE).contains(&g) {
                return Err(Error::Settings(format!(
                    "{name} guidance must be a number from 0 to {MAX_GUIDANCE} (got {g}); 1 turns guidance off"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.ddim_eta) {
            return Err(Error::Settings(format!(
                "DDIM's η must be between 0 (deterministic) and 1 (DDPM-like) (got {})",
                self.ddim_eta
            )));
        }
        if !(1..=MAX_BEST_OF).contains(&self.prior_best_of) {
            return Err(Error::Settings(format!(
                "the prior's best-of count must be between 1 and {MAX_BEST_OF} (got {}); the paper uses 2",
                self.prior_best_of
            )));
        }
        Ok(())
    }

    pub fn do_classifier_free_guidance(&self) -> bool {
        self.prior_guidance > 1.0 || self.decoder_guidance > 1.0
    }
}

/// The result: the image as diffusers returns it with `output_type="np"` (H, W, 3) in [0, 1].
pub struct GenerateOutput {
    pub image: Vec<f32>,
    pub height: usize,
    pub width: usize,
    /// The image embedding the decoder used (the prior's output, de-normalised).
    pub image_embedding: Vec<f32>,
}

impl GenerateOutput {
    /// 8-bit RGBA as PIL would save it: round-half-even of x·255.
    pub fn to_rgba8(&self) -> Vec<u8> {
        hwc_to_rgba8(&self.image)
    }
}

/// (H·W·3) in [0, 1] → RGBA bytes.
pub fn hwc_to_rgba8(hwc: &[f32]) -> Vec<u8> {
    hwc.chunks(3).flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2]), 255]).collect()
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8
}

/// A CHW image in [-1, 1] (one sample) → HWC in [0, 1]: (x·0.5 + 0.5).clamp(0, 1).
pub fn chw_to_hwc01(chw: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; h * w * c];
    for ch in 0..c {
        for p in 0..h * w {
            out[p * c + ch] = (chw[ch * h * w + p] * 0.5 + 0.5).clamp(0.0, 1.0);
        }
    }
    out
}

/// A classifier-free-guided prediction and the two it combines.
pub struct Guided<T> {
    pub uncond: T,
    pub cond: T,
    pub guided: T,
}

pub enum TextEncoder<B: Backend> {
    Clip(ClipTextModelWithProjection<B>),
    Bert(BertModel<B>),
}

impl<B: Backend> TextEncoder<B> {
    /// N prompts' tokens → text embeddings (N, E) and hidden states (N, L, E).
    pub fn encode(&self, tokens: &[&Tokens]) -> Result<TextEncoding<B::Tensor>> {
        let ids: Vec<u32> = tokens.iter().flat_map(|t| t.ids.iter().copied()).collect();
        match self {
            TextEncoder::Clip(m) => m.forward(&ids, tokens.len()),
            TextEncoder::Bert(m) => {
                let mask: Vec<bool> = tokens.iter().flat_map(|t| t.mask.iter().copied()).collect();
                m.forward(&ids, &mask, tokens.len())
            }
        }
    }
}

/// A loaded unCLIP model on one backend.
pub struct UnCLIPPipeline<B: Backend> {
    be: B,
    pub manifest: Manifest,
    pub tokenizer: Tokenizer,
    pub text_encoder: TextEncoder<B>,
    /// The text → image-embedding prior; image-variation checkpoints have none.
    pub prior: Option<PriorTransformer<B>>,
    pub text_proj: UnCLIPTextProjModel<B>,
    pub decoder: UNet2DConditionModel<B>,
    pub super_res_first: UNet2DModel<B>,
    pub super_res_last: UNet2DModel<B>,
    /// The image tower ("CLIP image encoder"), when the model ships one (image variations).
    pub image_encoder: Option<ClipVisionModelWithProjection<B>>,
    pub prior_scheduler: Option<UnCLIPScheduler>,
    pub decoder_scheduler: UnCLIPScheduler,
    pub super_res_scheduler: UnCLIPScheduler,
}

fn config<T: serde::de::DeserializeOwned>(name: &str, c: &Component, expected_class: &[&str]) -> Result<T> {
    if !expected_class.contains(&c.class.as_str()) {
        return Err(Error::Model(format!(
            "model.json: {name} is a {}, expected {}",
            c.class,
            expected_class.join(" or ")
        )));
    }
    serde_json::from_value(c.config.clone())
        .map_err(|e| Error::Model(format!("model.json: the {name} config is not a valid {} config: {e}", c.class)))
}

fn scheduler(name: &str, s: &SchedulerEntry) -> Result<UnCLIPScheduler> {
    if s.class != "UnCLIPScheduler" {
        return Err(Error::Model(format!("model.json: {name} is a {}, expected UnCLIPScheduler", s.class)));
    }
    let cfg: UnCLIPSchedulerConfig = serde_json::from_value(s.config.clone()).map_err(|e| {
        Error::Model(format!("model.json: the {name} config is not a valid UnCLIPScheduler config: {e}"))
    })?;
    Ok(UnCLIPScheduler::new(cfg)?)
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// Builds every component. `open` returns the bytes of a file listed in the manifest (already
    /// verified against its hash); it is called once per file.
    pub fn load(be: &B, manifest: Manifest, mut open: impl FnMut(&FileEntry) -> Result<Vec<u8>>) -> Result<Self> {
        let tokenizer = Tokenizer::from_json(&open(&manifest.tokenizer.file)?, manifest.tokenizer.max_length)?;
        let mut gguf = |c: &Component| -> Result<GgufFile> { Ok(GgufFile::from_bytes(open(&c.weights)?)?) };
        let m = &manifest;

        let file = gguf(&m.text_encoder)?;
        let w = Weights::new(&file, be, "text_encoder");
        let text_encoder = match m.text_encoder.class.as_str() {
            "BertModel" => {
                TextEncoder::Bert(BertModel::new(&w, config("text_encoder", &m.text_encoder, &["BertModel"])?)?)
            }
            _ => TextEncoder::Clip(ClipTextModelWithProjection::new(
                &w,
                config("text_encoder", &m.text_encoder, &["CLIPTextModelWithProjection"])?,
            )?),
        };
        let prior = match &m.prior {
            Some(c) => {
                let file = gguf(c)?;
                Some(PriorTransformer::new(
                    &Weights::new(&file, be, "prior"),
                    config("prior", c, &["PriorTransformer"])?,
                )?)
            }
            None => None,
        };
        let file = gguf(&m.text_proj)?;
        let text_proj = UnCLIPTextProjModel::new(
            &Weights::new(&file, be, "text_proj"),
            config("text_proj", &m.text_proj, &["UnCLIPTextProjModel"])?,
        )?;
        let file = gguf(&m.decoder)?;
        let decoder = UNet2DConditionModel::new(
            &Weights::new(&file, be, "decoder"),
            config("decoder", &m.decoder, &["UNet2DConditionModel"])?,
        )?;
        let file = gguf(&m.super_res_first)?;
        let super_res_first = UNet2DModel::new(
            &Weights::new(&file, be, "super_res_first"),
            config("super_res_first", &m.super_res_first, &["UNet2DModel"])?,
        )?;
        let file = gguf(&m.super_res_last)?;
        let super_res_last = UNet2DModel::new(
            &Weights::new(&file, be, "super_res_last"),
            config("super_res_last", &m.super_res_last, &["UNet2DModel"])?,
        )?;
        let image_encoder = match &m.image_encoder {
            Some(c) => {
                let file = gguf(c)?;
                let w = Weights::new(&file, be, "image_encoder");
                Some(ClipVisionModelWithProjection::new(
                    &w,
                    config("image_encoder", c, &["CLIPVisionModelWithProjection"])?,
                )?)
            }
            None => None,
        };
        let pipeline = UnCLIPPipeline {
            be: be.clone(),
            tokenizer,
            text_encoder,
            prior,
            text_proj,
            decoder,
            super_res_first,
            super_res_last,
            image_encoder,
            prior_scheduler: m.prior_scheduler.as_ref().map(|s| scheduler("prior_scheduler", s)).transpose()?,
            decoder_scheduler: scheduler("decoder_scheduler", &m.decoder_scheduler)?,
            super_res_scheduler: scheduler("super_res_scheduler", &m.super_res_scheduler)?,
            manifest,
        };
        pipeline.check_shapes_agree()?;
        Ok(pipeline)
    }

    /// The components must fit together (embedding sizes, token counts, channels).
    fn check_shapes_agree(&self) -> Result<()> {
        let tp = &self.text_proj.config;
        let dc = &self.decoder.config;
        let sr = &self.super_res_first.config;
        let mismatch = |what: String| Err(Error::Model(format!("the model's components do not fit together: {what}")));
        if let Some(prior) = &self.prior {
            if prior.config.num_embeddings != self.tokenizer.max_length() {
                return mismatch(format!(
                    "the prior reads {} text tokens but the tokenizer pads to {}",
                    prior.config.num_embeddings,
                    self.tokenizer.max_length()
                ));
            }
            if tp.clip_embeddings_dim != prior.config.embedding_dim {
                return mismatch(format!(
                    "text_proj takes {}-d embeddings, the prior makes {}-d",
                    tp.clip_embeddings_dim, prior.config.embedding_dim
                ));
            }
        }
        if dc.cross_attention_dim != tp.cross_attention_dim || dc.block_out_channels[0] * 4 != tp.time_embed_dim {
            return mismatch("the decoder's cross_attention_dim / time embedding do not match text_proj".into());
        }
        if sr.in_channels != 2 * dc.in_channels || self.super_res_last.config.in_channels != sr.in_channels {
            return mismatch(format!("super-res takes {} channels, expected 2 × {}", sr.in_channels, dc.in_channels));
        }
        Ok(())
    }

    /// The size E of the image embeddings the decoder is conditioned on.
    pub fn embedding_dim(&self) -> usize {
        self.text_proj.config.clip_embeddings_dim
    }

    pub fn backend(&self) -> &B {
        &self.be
    }

    /// (height, width) of the final image.
    pub fn output_size(&self) -> (usize, usize) {
        (self.super_res_first.config.sample_size, self.super_res_first.config.sample_size)
    }

    pub(crate) fn randn(&self, rng: &mut TorchGenerator, shape: &[usize]) -> Result<B::Tensor> {
        self.be.tensor(rng.randn(shape.iter().product()), shape)
    }

    /// u + g·(c − u) over the [uncond; cond] halves of `out` (first `channels` channels).
    fn guide(out: &B::Tensor, b: usize, channels: usize, g: f32) -> Result<Guided<B::Tensor>> {
        let uncond = out.narrow(0, 0, b)?.narrow(1, 0, channels)?;
        let cond = out.narrow(0, b, b)?.narrow(1, 0, channels)?;
        let guided = uncond.add(&cond.sub(&uncond)?.affine(g, 0.0)?)?;
        Ok(Guided { uncond, cond, guided })
    }

    /// The step coefficients of the chosen sampler.
    fn coefficients(
        p: &GenerateParams,
        s: &UnCLIPScheduler,
        t: usize,
        prev: Option<usize>,
    ) -> Result<StepCoefficients> {
        Ok(match p.sampler {
            Sampler::Ddpm => s.step_coefficients(t, prev)?,
            Sampler::Ddim => ddim_step_coefficients(s, t, prev, p.ddim_eta)?,
        })
    }

    pub async fn generate<O: Observer<B::Tensor>>(&self, p: &GenerateParams, obs: &mut O) -> Result<GenerateOutput> {
        p.validate()?;
        let mut rng = TorchGenerator::new(p.seed);
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        let image_embeddings = match &p.image_embedding {
            Some(given) => self.embedding_tensor(given)?,
            None => self.sample_prior(p, &text, &mut rng, obs).await?.embedding,
        };
        self.decode(p, &text, &image_embeddings, &mut rng, obs).await
    }

    /// A host embedding as a (1, E) tensor, checked.
    pub(crate) fn embedding_tensor(&self, given: &[f32]) -> Result<B::Tensor> {
        let e = self.embedding_dim();
        if given.len() != e || given.iter().any(|v| !v.is_finite()) {
            return Err(Error::Settings(format!(
                "the image embedding must be {e} finite numbers (got {} values)",
                given.len()
            )));
        }
        self.be.tensor(given.to_vec(), &[1, e])
    }

    /// Stage 1, text: [uncond; cond] under CFG (spec §4). The unconditional caption is `negative_prompt`,
    /// "" in diffusers' UnCLIPPipeline (a negative prompt steers both guided stages away from it).
    pub async fn encode_text<O: Observer<B::Tensor>>(
        &self,
        prompt: &str,
        negative_prompt: &str,
        do_cfg: bool,
        obs: &mut O,
    ) -> Result<TextConditioning<B::Tensor>> {
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::Text, steps: 1 });
        let cond = self.tokenizer.encode(prompt)?;
        let uncond = self.tokenizer.encode(if do_cfg { negative_prompt } else { "" })?;
        for dropped in [&cond.dropped, &uncond.dropped].into_iter().flatten() {
            emit!(obs, Event::Warning(truncation_warning(self.tokenizer.max_length(), dropped)));
        }
        let tokens: Vec<&Tokens> = if do_cfg { vec![&uncond, &cond] } else { vec![&cond] };
        let encoding = self.text_encoder.encode(&tokens)?;
        let mask: Vec<bool> = tokens.iter().flat_map(|t| t.mask.iter().copied()).collect();
        emit!(obs, Event::StageEnd { stage: Stage::Text, elapsed_ms: now_ms() - start });
        Ok(TextConditioning { encoding, mask, do_cfg })
    }

    /// Stage 2, the prior: noise → normalised image embedding (x0-prediction), then de-normalised (spec
    /// §6). With `prior_best_of` = n > 1 the n samples run as one batch and the one whose embedding is most
    /// similar to the text embedding is kept (DALL·E 2 §2.2).
    pub async fn sample_prior<O: Observer<B::Tensor>>(
        &self,
        p: &GenerateParams,
        text: &TextConditioning<B::Tensor>,
        rng: &mut TorchGenerator,
        obs: &mut O,
    ) -> Result<PriorSample<B::Tensor>> {
        let (Some(prior), Some(scheduler)) = (&self.prior, &self.prior_scheduler) else {
            return Err(Error::Model(format!(
                "{} has no prior, so it cannot turn a prompt into an image embedding: it is an image-variation model, give it an image instead (unclip variations, or the Remix panel)",
                self.manifest.name
            )));
        };
        let (n, e, do_cfg) = (p.prior_best_of, prior.config.embedding_dim, text.do_cfg);
        // each text row (uncond, cond) repeated n times: [u×n; c×n], the layout `guide` splits
        let (embeds, hidden, mask) = if n == 1 {
            (text.encoding.text_embeds.clone(), text.encoding.last_hidden_state.clone(), text.mask.clone())
        } else {
            let rows = text.encoding.text_embeds.dim(0);
            let repeat = |t: &B::Tensor| -> Result<B::Tensor> {
                let parts = (0..rows).map(|r| t.narrow(0, r, 1)).collect::<Result<Vec<_>>>()?;
                B::Tensor::cat(&parts.iter().flat_map(|x| std::iter::repeat_n(x, n)).collect::<Vec<_>>(), 0)
            };
            let l = text.mask.len() / rows;
            let mask = text.mask.chunks(l).flat_map(|row| row.repeat(n)).collect();
            (repeat(&text.encoding.text_embeds)?, repeat(&text.encoding.last_hidden_state)?, mask)
        };
        let timesteps = scheduler.set_timesteps(p.prior_steps)?;
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::Prior, steps: timesteps.len() });
        let mut x = self.randn(rng, &[n, e])?;
        for (i, &t) in timesteps.iter().enumerate() {
            let input = if do_cfg { B::Tensor::cat(&[&x, &x], 0)? } else { x.clone() };
            let out = prior.forward(&input, t, &embeds, &hidden, &mask)?;
            let guided = if do_cfg { Some(Self::guide(&out, n, e, p.prior_guidance)?) } else { None };
            let pred = guided.as_ref().map_or(&out, |g| &g.guided);
            let c = scheduler.step_coefficients(t, timesteps.get(i + 1).copied())?;
            let noise = if c.noise.is_some() { Some(self.randn(rng, &[n, e])?) } else { None };
            let (prev, x0) = B::Tensor::scheduler_step(pred, None, &x, noise.as_ref(), &c)?;
            let event = StepEvent::new(Stage::Prior, i, &timesteps, [&x, pred, &x0, &prev], start);
            emit!(obs, Event::Step(event.with_guidance(guided.as_ref())));
            x = prev;
        }
        emit!(obs, Event::StageEnd { stage: Stage::Prior, elapsed_ms: now_ms() - start });
        let embeddings = prior.post_process_latents(&x)?; // (n, E)
        if n == 1 {
            return Ok(PriorSample { embedding: embeddings, candidates: Vec::new(), chosen: 0 });
        }
        let text_rows = text.encoding.text_embeds.dim(0);
        let cond_text = text.encoding.text_embeds.narrow(0, text_rows - 1, 1)?.to_vec().await?;
        let candidates: Vec<Vec<f32>> = embeddings.to_vec().await?.chunks(e).map(<[f32]>::to_vec).collect();
        let chosen = crate::latent::best_of(&candidates, &cond_text)?;
        Ok(PriorSample { embedding: embeddings.narrow(0, chosen, 1)?, candidates, chosen })
    }

    /// 3.–5. decoder, super-res, post-processing for one image embedding (1, E).
    pub async fn decode<O: Observer<B::Tensor>>(
        &self,
        p: &GenerateParams,
        text: &TextConditioning<B::Tensor>,
        image_embeddings: &B::Tensor,
        rng: &mut TorchGenerator,
        obs: &mut O,
    ) -> Result<GenerateOutput> {
        self.decode_edit(p, text, image_embeddings, rng, obs, None).await
    }

    /// [`Self::decode`], or with `edit` the SDEdit / RePaint version of both stages ([`crate::edit`]).
    pub(crate) async fn decode_edit<O: Observer<B::Tensor>>(
        &self,
        p: &GenerateParams,
        text: &TextConditioning<B::Tensor>,
        image_embeddings: &B::Tensor,
        rng: &mut TorchGenerator,
        obs: &mut O,
        edit: Option<&EditParams>,
    ) -> Result<GenerateOutput> {
        let b = 1; // images per prompt
        let cond = self.decoder_conditioning(text, image_embeddings)?;
        let dc = &self.decoder.config;
        let (ch, size) = (dc.in_channels, dc.sample_size);
        let all = self.decoder_scheduler.set_timesteps(p.decoder_steps)?;
        let stage_edit = edit.map(|e| StageEdit::new(&self.be, e, ch, size, &all, MaskCut::Any)).transpose()?;
        let timesteps = stage_edit.as_ref().map_or(all, |e| e.timesteps.clone());
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::Decoder, steps: timesteps.len() });
        let draw = match &p.decoder_latents {
            Some(given) if given.len() == b * ch * size * size && given.iter().all(|v| v.is_finite()) => {
                self.be.tensor(given.clone(), &[b, ch, size, size])?
            }
            Some(given) => {
                return Err(Error::Settings(format!(
                    "the decoder's initial noise must be {} finite numbers ({ch}×{size}×{size}), got {} values",
                    b * ch * size * size,
                    given.len()
                )))
            }
            None => self.randn(rng, &[b, ch, size, size])?,
        };
        let sched = &self.decoder_scheduler;
        let mut x = match &stage_edit {
            Some(e) => e.start(sched, draw)?,
            None => draw,
        };
        for (i, &t) in timesteps.iter().enumerate() {
            let prev_t = timesteps.get(i + 1).copied();
            let rounds = stage_edit.as_ref().map_or(1, |e| e.resample());
            for round in 0..rounds {
                let DecoderEps { eps, var, guided } = self.decoder_eps(&x, t, &cond, p.decoder_guidance)?;
                let c = Self::coefficients(p, sched, t, prev_t)?;
                let noise = if c.noise.is_some() { Some(self.randn(rng, &[b, ch, size, size])?) } else { None };
                let var = if cond.learned_variance { Some(&var) } else { None };
                let (prev, x0) = B::Tensor::scheduler_step(&eps, var, &x, noise.as_ref(), &c)?;
                let prev = match settle(stage_edit.as_ref(), &self.be, sched, prev, t, prev_t, round + 1 < rounds, rng)?
                {
                    Settled::Again(x_t) => {
                        x = x_t;
                        continue;
                    }
                    Settled::Done(prev) => prev,
                };
                let event = StepEvent::new(Stage::Decoder, i, &timesteps, [&x, &eps, &x0, &prev], start);
                emit!(obs, Event::Step(event.with_guidance(guided.as_ref())));
                x = prev;
            }
        }
        emit!(obs, Event::StageEnd { stage: Stage::Decoder, elapsed_ms: now_ms() - start });
        let image_small = x.clamp(-1.0, 1.0)?;

        // 4. super-res: bicubic-AA upsample as the condition; `super_res_last` only for the last step (spec §10)
        let sr = &self.super_res_first.config;
        let (sr_ch, sr_size) = (sr.in_channels / 2, sr.sample_size);
        let upscaled = resize_bicubic_aa(&self.be, &image_small, sr_size, sr_size)?;
        let sched = &self.super_res_scheduler;
        let all = sched.set_timesteps(p.sr_steps)?;
        if edit.is_none() && sched.prediction_type() == PredictionType::Epsilon && all.len() < MIN_EPSILON_SR_STEPS {
            emit!(obs, Event::Warning(few_sr_steps_warning(&all)));
        }
        let stage_edit = edit.map(|e| StageEdit::new(&self.be, e, sr_ch, sr_size, &all, MaskCut::Half)).transpose()?;
        let timesteps = stage_edit.as_ref().map_or(all.clone(), |e| e.timesteps.clone());
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::SuperRes, steps: timesteps.len() });
        let draw = self.randn(rng, &[b, sr_ch, sr_size, sr_size])?;
        let mut x = match &stage_edit {
            Some(e) => e.start(sched, draw)?,
            None => draw,
        };
        for (i, &t) in timesteps.iter().enumerate() {
            let prev_t = timesteps.get(i + 1).copied();
            // the model for the schedule's last step, also when strength cuts the schedule
            let unet =
                if t == *all.last().expect("≥ 2 steps") { &self.super_res_last } else { &self.super_res_first };
            let rounds = stage_edit.as_ref().map_or(1, |e| e.resample());
            for round in 0..rounds {
                let eps = unet.forward(&B::Tensor::cat(&[&x, &upscaled], 1)?, t)?;
                let c = Self::coefficients(p, sched, t, prev_t)?;
                let noise =
                    if c.noise.is_some() { Some(self.randn(rng, &[b, sr_ch, sr_size, sr_size])?) } else { None };
                let (prev, x0) = B::Tensor::scheduler_step(&eps, None, &x, noise.as_ref(), &c)?;
                let prev = match settle(stage_edit.as_ref(), &self.be, sched, prev, t, prev_t, round + 1 < rounds, rng)?
                {
                    Settled::Again(x_t) => {
                        x = x_t;
                        continue;
                    }
                    Settled::Done(prev) => prev,
                };
                emit!(obs, Event::Step(StepEvent::new(Stage::SuperRes, i, &timesteps, [&x, &eps, &x0, &prev], start)));
                x = prev;
            }
        }
        emit!(obs, Event::StageEnd { stage: Stage::SuperRes, elapsed_ms: now_ms() - start });

        // 5. post-process: (x·0.5 + 0.5).clamp(0, 1), NHWC (spec §12)
        let image = chw_to_hwc01(&x.to_vec().await?, sr_ch, sr_size, sr_size);
        Ok(GenerateOutput { image, height: sr_size, width: sr_size, image_embedding: image_embeddings.to_vec().await? })
    }

    /// The decoder's conditioning: text_proj (spec §7) and the decoder mask (4 extra tokens always visible).
    pub(crate) fn decoder_conditioning(
        &self,
        text: &TextConditioning<B::Tensor>,
        image_embeddings: &B::Tensor,
    ) -> Result<DecoderCondition<B::Tensor>> {
        let enc = &text.encoding;
        let tp = self.text_proj.forward(image_embeddings, &enc.text_embeds, &enc.last_hidden_state, text.do_cfg)?;
        let k = self.text_proj.config.clip_extra_context_tokens;
        let l = self.tokenizer.max_length();
        let mask =
            text.mask.chunks(l).flat_map(|row| std::iter::repeat_n(true, k).chain(row.iter().copied())).collect();
        let dc = &self.decoder.config;
        let learned_variance = self.decoder_scheduler.variance_type() == VarianceType::LearnedRange;
        if learned_variance && dc.out_channels != 2 * dc.in_channels {
            return Err(Error::Model(format!(
                "the decoder scheduler uses learned_range variance but the decoder outputs {} channels, not 2 × {}",
                dc.out_channels, dc.in_channels
            )));
        }
        Ok(DecoderCondition { tp, mask, do_cfg: text.do_cfg, learned_variance })
    }

    /// One decoder call on x (1, C, S, S) (spec §8.5).
    pub(crate) fn decoder_eps(
        &self,
        x: &B::Tensor,
        t: usize,
        cond: &DecoderCondition<B::Tensor>,
        guidance: f32,
    ) -> Result<DecoderEps<B::Tensor>> {
        let (b, ch) = (x.dim(0), x.dim(1));
        let input = if cond.do_cfg { B::Tensor::cat(&[x, x], 0)? } else { x.clone() };
        let tp = &cond.tp;
        let out = self.decoder.forward(&input, t, &tp.encoder_hidden_states, &tp.additive_time_emb, &cond.mask)?;
        Ok(if cond.do_cfg {
            let var = out.narrow(0, b, b)?.narrow(1, ch, out.dim(1) - ch)?; // the cond half's v
            let guided = Self::guide(&out, b, ch, guidance)?;
            DecoderEps { eps: guided.guided.clone(), var, guided: Some(guided) }
        } else {
            DecoderEps { eps: out.narrow(1, 0, ch)?, var: out.narrow(1, ch, out.dim(1) - ch)?, guided: None }
        })
    }
}

/// Fewer super-res steps than this on an ε-predicting super-res model draw coloured noise: unclip-emoji 0.1 at 2 steps
/// is noise, 3–4 noisy, 5 clean, 7 (diffusers' default) the picture (`unclip generate --prompt "a happy dog"
/// --prior-steps 10 --decoder-steps 10 --sr-steps N`). The pipeline warns below it.
pub const MIN_EPSILON_SR_STEPS: usize = 5;

/// Why an ε-predicting super-res with few steps draws noise, in the words the page and the CLI show.
pub fn few_sr_steps_warning(timesteps: &[usize]) -> String {
    let next = timesteps.get(1).copied().unwrap_or(0);
    format!(
        "super-res runs only {} steps and this model's super-res predicts the noise ε: its first step jumps from t = {} to t = {next}, and at t = 999 the predicted image x̂0 = (x_t − √(1−ᾱ)·ε̂)/√ᾱ divides by √ᾱ ≈ 5·10⁻⁵, so tiny errors in ε̂ become coloured noise that so few steps cannot remove: use {MIN_EPSILON_SR_STEPS} or more (7 is diffusers' default)",
        timesteps.len(),
        timesteps.first().copied().unwrap_or(0)
    )
}

/// What the text encoder gives the prior and the decoder: [uncond; cond] under CFG, and their masks.
/// What the page and the CLI say when a prompt is cut to the text encoder's length: diffusers'
/// `UnCLIPPipeline._encode_prompt` warning, naming the same text.
pub fn truncation_warning(max_length: usize, dropped: &str) -> String {
    format!("the text encoder reads at most {max_length} tokens, so this part of the prompt was dropped: \"{dropped}\"")
}

pub struct TextConditioning<T> {
    pub encoding: TextEncoding<T>,
    /// (rows · L) token masks.
    pub mask: Vec<bool>,
    pub do_cfg: bool,
}

/// The prior's output: the embedding kept (1, E) and, under best-of-N, every candidate and which won.
pub struct PriorSample<T> {
    pub embedding: T,
    pub candidates: Vec<Vec<f32>>,
    pub chosen: usize,
}

/// A decoder call's ε̂ (guided under CFG), its learned-variance channels v (from the conditional half)
/// and, under CFG, the two predictions ε̂ combines.
pub(crate) struct DecoderEps<T> {
    pub eps: T,
    pub var: T,
    pub guided: Option<Guided<T>>,
}

/// The decoder's conditioning for one image embedding.
pub(crate) struct DecoderCondition<T> {
    tp: DecoderConditioning<T>,
    mask: Vec<bool>,
    do_cfg: bool,
    learned_variance: bool,
}
