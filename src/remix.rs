//! DALL·E 2's CLIP-latent features (Ramesh et al. 2022 §3, Figures 3–5) on a loaded pipeline: embed a
//! prompt (through the prior) or an image (through the image tower), invert an image into the
//! decoder's noise with DDIM, and the settings that decode one frame of a variation, an
//! interpolation or a text diff. The embedding arithmetic itself is in [`crate::latent`].
//!
//! Every frame is a plain [`UnCLIPPipeline::generate`] of a given image embedding with the empty
//! caption (as diffusers' `UnCLIPImageVariationPipeline` decodes), so the image embedding alone
//! carries the meaning, and frames that share a seed share all their noise.

use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::image_processor::{ClipImageProcessorConfig, RgbaImage};
use crate::latent;
use crate::pipeline::{
    emit, DecoderEps, Event, GenerateParams, Observer, Sampler, Silent, Stage, StepEvent, UnCLIPPipeline,
};
use crate::schedulers::{ddim_inversion_coefficients, predicted_epsilon_coefficients, PredictionType};
use crate::time::now_ms;

/// The settings of one remix frame: `base`'s steps, guidance and sampler, decoding `embedding` from
/// `seed` with the empty caption and no prior.
pub fn frame_params(base: &GenerateParams, embedding: Vec<f32>, seed: u64) -> GenerateParams {
    GenerateParams { prompt: String::new(), seed, image_embedding: Some(embedding), prior_best_of: 1, ..base.clone() }
}

/// The settings of variation `k` (seed `base.seed + k`); with `inverted` noise (DDIM inversion of the
/// image) the decoder starts from it and samples with DDIM at `base.ddim_eta` (η = 0 reconstructs the
/// image, larger η strays further from it, DALL·E 2 §3.1).
pub fn variation_params(
    base: &GenerateParams,
    embedding: &[f32],
    inverted: Option<&[f32]>,
    k: usize,
) -> GenerateParams {
    let p = frame_params(base, embedding.to_vec(), base.seed.wrapping_add(k as u64));
    match inverted {
        Some(x_t) => GenerateParams { decoder_latents: Some(x_t.to_vec()), sampler: Sampler::Ddim, ..p },
        None => p,
    }
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// The text embedding z_t of a prompt (the text encoder's pooled output), the space text diffs
    /// are taken in.
    pub async fn text_embedding(&self, prompt: &str) -> Result<Vec<f32>> {
        let text = self.encode_text(prompt, "", false, &mut Silent).await?;
        text.encoding.text_embeds.to_vec().await
    }

    /// A prompt → an image embedding through the text encoder and the prior, exactly the one
    /// `generate(p)` decodes (same seed, steps, guidance and best-of).
    pub async fn embed_prompt<O: Observer<B::Tensor>>(&self, p: &GenerateParams, obs: &mut O) -> Result<Vec<f32>> {
        p.validate()?;
        let mut rng = crate::rng::TorchGenerator::new(p.seed);
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        self.sample_prior(p, &text, &mut rng, obs).await?.embedding.to_vec().await
    }

    /// An image → its image embedding: the checkpoint's image processor, the image tower
    /// (`CLIPVisionModelWithProjection`), and L2 normalisation where the model was trained on it.
    pub async fn embed_image(&self, image: &RgbaImage) -> Result<Vec<f32>> {
        let Some(tower) = &self.image_encoder else {
            return Err(Error::Model(format!(
                "{} has no image encoder, so it cannot turn an image into an embedding: image variations need a model converted with an image_encoder folder (an UnCLIP image-variation checkpoint or unclip-emoji)",
                self.manifest.name
            )));
        };
        let Some(processor) = &self.manifest.image_processor else {
            return Err(Error::Model(
                "model.json lists an image encoder but no image_processor: convert the model again with this version of `unclip convert`".into(),
            ));
        };
        let config: ClipImageProcessorConfig = serde_json::from_value(processor.config.clone())
            .map_err(|e| Error::Model(format!("model.json: the image_processor config is not valid: {e}")))?;
        let (e, s) = (self.embedding_dim(), tower.config.image_size);
        if tower.config.projection_dim != e {
            return Err(Error::Model(format!(
                "the image encoder makes {}-d embeddings but the decoder is conditioned on {e}-d ones: they are not from one model",
                tower.config.projection_dim
            )));
        }
        let pixels = self.backend().tensor(config.preprocess(image, s)?, &[1, 3, s, s])?;
        let embedding = tower.forward(&pixels)?.to_vec().await?;
        if processor.normalize_embeddings {
            latent::normalize(&embedding)
        } else {
            Ok(embedding)
        }
    }

    /// DDIM inversion of the decoder (DALL·E 2 §3.1): the noise x_T (C·S·S values) from which the
    /// deterministic DDIM sampler, conditioned on `embedding` with `p`'s caption, steps and decoder
    /// guidance, returns (approximately) `image` at the decoder's resolution. Reports a step event per
    /// model call under [`Stage::Inversion`].
    pub async fn invert<O: Observer<B::Tensor>>(
        &self,
        image: &RgbaImage,
        embedding: &[f32],
        p: &GenerateParams,
        obs: &mut O,
    ) -> Result<Vec<f32>> {
        GenerateParams { image_embedding: Some(embedding.to_vec()), ..p.clone() }.validate()?;
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        let cond = self.decoder_conditioning(&text, &self.embedding_tensor(embedding)?)?;
        let (ch, size) = (self.decoder.config.in_channels, self.decoder.config.sample_size);
        if ch != 3 {
            return Err(Error::Model(format!("DDIM inversion needs an RGB decoder, this one has {ch} channels")));
        }
        // the image at the decoder's resolution, in the decoder's [-1, 1]
        let pixels = image.to_rgb().fit_square(size)?.to_chw([1.0 / 127.5; 3], [-1.0; 3]);
        let mut x = self.backend().tensor(pixels, &[1, ch, size, size])?;
        let sampling = self.decoder_scheduler.set_timesteps(p.decoder_steps)?; // 999 … 0
        let ascending: Vec<usize> = sampling.iter().rev().copied().collect();
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: Stage::Inversion, steps: ascending.len() });
        for (k, &t) in ascending.iter().enumerate() {
            let from = k.checked_sub(1).map(|j| ascending[j]);
            let DecoderEps { eps: out, guided, .. } = self.decoder_eps(&x, t, &cond, p.decoder_guidance)?;
            let eps = match self.decoder_scheduler.prediction_type() {
                PredictionType::Epsilon => out,
                // an x0-predicting decoder: the ε̂ its x̂0 implies for x at t (diffusers' `pred_epsilon`)
                PredictionType::Sample => {
                    let e = predicted_epsilon_coefficients(&self.decoder_scheduler, t)?;
                    x.affine(e.sample, 0.0)?.add(&out.affine(e.x0, 0.0)?)?
                }
            };
            let c = ddim_inversion_coefficients(&self.decoder_scheduler, from, t)?;
            let x0 = x.affine(c.x0_sample, 0.0)?.add(&eps.affine(c.x0_eps, 0.0)?)?;
            let next = x.affine(c.sample, 0.0)?.add(&eps.affine(c.eps, 0.0)?)?;
            let event = StepEvent::new(Stage::Inversion, k, &ascending, [&x, &eps, &x0, &next], start);
            emit!(obs, Event::Step(event.with_guidance(guided.as_ref())));
            x = next;
        }
        emit!(obs, Event::StageEnd { stage: Stage::Inversion, elapsed_ms: now_ms() - start });
        x.to_vec().await
    }
}
