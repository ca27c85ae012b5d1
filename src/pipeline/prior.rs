//! Stage 2, the prior (docs/math.md §6): noise → a normalised image embedding (x0-prediction, unCLIP's own
//! step), then de-normalised; with `prior_best_of` = n > 1 the n samples run as one batch and the one whose
//! embedding is most similar to the text embedding is kept (DALL·E 2 §2.2).

use super::{Denoising, Observer, Prediction, Stage, TextConditioning, UnCLIPPipeline};
use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::rng::TorchGenerator;
use crate::settings::{GenerateParams, Sampler};

/// The prior's output: the embedding kept (1, E) and, under best-of-N, every candidate and which won.
pub struct PriorSample<T> {
    pub embedding: T,
    pub candidates: Vec<Vec<f32>>,
    pub chosen: usize,
}

impl<B: Backend> UnCLIPPipeline<B> {
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
        let x = self.randn(rng, &[n, e])?; // (n, E) normalised embeddings
        let d = Denoising {
            stage: Stage::Prior,
            scheduler,
            sampler: Sampler::Ddpm,
            ddim_eta: 0.0,
            timesteps: &timesteps,
            edit: None,
        };
        let x = self
            .denoise(&d, x, rng, obs, |x, t| {
                let input = if do_cfg { B::Tensor::cat(&[x, x], 0)? } else { x.clone() };
                let out = self.be.on_pool(|| prior.forward(&input, t, &embeds, &hidden, &mask))?; // x̂0: (2n or n, E)
                Ok(if do_cfg {
                    let guided = Self::guide(&out, n, e, p.prior_guidance)?;
                    Prediction { output: guided.guided.clone(), variance: None, guidance: Some(guided) }
                } else {
                    Prediction { output: out, variance: None, guidance: None }
                })
            })
            .await?;
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
}
