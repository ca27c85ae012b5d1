//! diffusers `UnCLIPTextProjModel` (docs/math.md §7): turns the image embedding and the text encoding into
//! the decoder's conditioning: extra context tokens + projected text tokens for cross-attention, and
//! an additive time embedding.

use crate::backend::{Backend, Tensor};
use crate::config::UnCLIPTextProjConfig;
use crate::error::Result;
use crate::nn::{LayerNorm, Linear, Weights};

pub struct UnCLIPTextProjModel<B: Backend> {
    learned_classifier_free_guidance_embeddings: B::Tensor,
    embedding_proj: Linear<B>,
    clip_image_embeddings_project_to_time_embeddings: Linear<B>,
    clip_extra_context_tokens_proj: Linear<B>,
    encoder_hidden_states_proj: Linear<B>,
    text_encoder_hidden_states_norm: LayerNorm<B>,
    pub config: UnCLIPTextProjConfig,
}

/// The decoder's conditioning.
pub struct DecoderConditioning<T> {
    /// (N, K + L, C) cross-attention tokens.
    pub encoder_hidden_states: T,
    /// (N, time_embed_dim) added to the UNet's time embedding (`class_labels`).
    pub additive_time_emb: T,
}

impl<B: Backend> UnCLIPTextProjModel<B> {
    pub fn new(w: &Weights<B>, config: UnCLIPTextProjConfig) -> Result<Self> {
        let c = &config;
        let (e, t, x, k) =
            (c.clip_embeddings_dim, c.time_embed_dim, c.cross_attention_dim, c.clip_extra_context_tokens);
        Ok(UnCLIPTextProjModel {
            learned_classifier_free_guidance_embeddings: w
                .tensor("learned_classifier_free_guidance_embeddings", &[e])?,
            embedding_proj: Linear::new(&w.pp("embedding_proj"), e, t)?,
            clip_image_embeddings_project_to_time_embeddings: Linear::new(
                &w.pp("clip_image_embeddings_project_to_time_embeddings"),
                e,
                t,
            )?,
            clip_extra_context_tokens_proj: Linear::new(&w.pp("clip_extra_context_tokens_proj"), e, k * x)?,
            encoder_hidden_states_proj: Linear::new(&w.pp("encoder_hidden_states_proj"), e, x)?,
            text_encoder_hidden_states_norm: LayerNorm::new(&w.pp("text_encoder_hidden_states_norm"), x, 1e-5)?,
            config,
        })
    }

    /// The learned "null image embedding" the unconditional half gets (E,).
    pub fn null_image_embedding(&self) -> &B::Tensor {
        &self.learned_classifier_free_guidance_embeddings
    }

    /// image_embeddings (B, E); prompt_embeds (N, E) and text_hidden (N, L, E) with N = 2B under CFG
    /// ([uncond; cond]) → conditioning for N samples.
    pub fn forward(
        &self,
        image_embeddings: &B::Tensor,
        prompt_embeds: &B::Tensor,
        text_hidden: &B::Tensor,
        do_classifier_free_guidance: bool,
    ) -> Result<DecoderConditioning<B::Tensor>> {
        let (b, e) = (image_embeddings.dim(0), image_embeddings.dim(1));
        let image = if do_classifier_free_guidance {
            let null = self.learned_classifier_free_guidance_embeddings.reshape(&[1, e])?;
            let nulls = B::Tensor::cat(&vec![&null; b], 0)?;
            B::Tensor::cat(&[&nulls, image_embeddings], 0)? // (2B, E): uncond gets the null embedding
        } else {
            image_embeddings.clone()
        };
        let n = image.dim(0);
        let add = self
            .embedding_proj
            .forward(prompt_embeds)?
            .add(&self.clip_image_embeddings_project_to_time_embeddings.forward(&image)?)?; // (N, T)
        let (k, x) = (self.config.clip_extra_context_tokens, self.config.cross_attention_dim);
        // (N, K·C) viewed channel-major as (N, C, K), then → (N, K, C)
        let extra = self.clip_extra_context_tokens_proj.forward(&image)?.reshape(&[n, x, k])?.transpose(1, 2)?;
        let hs =
            self.text_encoder_hidden_states_norm.forward(&self.encoder_hidden_states_proj.forward(text_hidden)?)?; // (N, L, C)
        Ok(DecoderConditioning { encoder_hidden_states: B::Tensor::cat(&[&extra, &hs], 1)?, additive_time_emb: add })
    }
}
