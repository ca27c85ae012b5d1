//! DALL·E 2's CLIP-latent features (Ramesh et al. 2022 §3, Figures 3–5): the settings that decode one frame of a
//! variation, an interpolation or a text diff. The pipeline embeds prompts and images
//! ([`UnCLIPPipeline::embed_prompt`], [`UnCLIPPipeline::embed_image`]) and inverts images into the decoder's
//! noise ([`UnCLIPPipeline::invert`]); the embedding arithmetic is in [`crate::latent`].
//!
//! Every frame is a plain [`UnCLIPPipeline::generate`] of a given image embedding with the empty
//! caption (as diffusers' `UnCLIPImageVariationPipeline` decodes), so the image embedding alone
//! carries the meaning, and frames that share a seed share all their noise.

#[cfg(doc)]
use crate::pipeline::UnCLIPPipeline;
use crate::settings::{GenerateParams, Sampler};

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
