//! The unCLIP loop (diffusers `UnCLIPPipeline.__call__`, docs/math.md §4–§12):
//!
//!   prompt → tokenizer → text encoder → PRIOR (CFG) → image embedding → text_proj
//!          → DECODER (CFG, learned variance) → bicubic-AA upsample → SUPER-RES → image
//!
//! with the same RNG draw order as diffusers, so a seed reproduces `torch.Generator().manual_seed`.
//! Every step reports x_t, the model's prediction and x̂0 to an [`Observer`], which may cancel.
//!
//! load: components from a model directory · text, prior, decoder: the stages · denoise: the reverse process they
//! share · embed, inversion: embeddings and DDIM inversion (remix) · events: what a run reports. What to generate
//! is [`crate::settings`], re-exported here.

use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::models::*;
use crate::rng::TorchGenerator;
use crate::schedulers::UnCLIPScheduler;
use crate::tokenizer::Tokenizer;

mod decoder;
mod denoise;
mod embed;
mod events;
mod inversion;
mod load;
mod prior;
mod text;

pub use crate::settings::{GenerateParams, Sampler, MAX_BEST_OF, MAX_GUIDANCE, MAX_STEPS};
pub(crate) use decoder::DecoderEps;
pub use decoder::{few_sr_steps_warning, MIN_EPSILON_SR_STEPS};
pub(crate) use denoise::{Denoising, Prediction};
pub(crate) use events::emit;
pub use events::{Event, Flow, Guided, Observer, Preview, Previews, Silent, Stage, StepEvent};
pub use prior::PriorSample;
pub use text::{truncation_warning, TextConditioning, TextEncoder};

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
        crate::image_processor::hwc_to_rgba8(&self.image)
    }
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// prompt → image: text, prior (or `p.image_embedding`), decoder, super-res.
    pub async fn generate<O: Observer<B::Tensor>>(&self, p: &GenerateParams, obs: &mut O) -> Result<GenerateOutput> {
        p.validate()?;
        let mut rng = TorchGenerator::new(p.seed);
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        let image_embeddings = match &p.image_embedding {
            Some(given) => self.embedding_tensor(given)?,
            None => self.sample_prior(p, &text, &mut rng, obs).await?.embedding,
        };
        self.decode(p, &text, &image_embeddings, &mut rng, obs, None).await
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

    /// `torch.randn(shape, generator=rng)` on the backend.
    pub(crate) fn randn(&self, rng: &mut TorchGenerator, shape: &[usize]) -> Result<B::Tensor> {
        self.be.tensor(rng.randn(shape.iter().product()), shape)
    }

    /// u + g·(c − u) over the [uncond; cond] halves (b rows each) of `out` (first `channels` channels).
    fn guide(out: &B::Tensor, b: usize, channels: usize, g: f32) -> Result<Guided<B::Tensor>> {
        let uncond = out.narrow(0, 0, b)?.narrow(1, 0, channels)?;
        let cond = out.narrow(0, b, b)?.narrow(1, 0, channels)?;
        let guided = uncond.add(&cond.sub(&uncond)?.affine(g, 0.0)?)?;
        Ok(Guided { uncond, cond, guided })
    }
}
