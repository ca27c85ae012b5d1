//! DDIM inversion of the decoder (DALL·E 2 §3.1): an image → the noise x_T from which the deterministic DDIM
//! sampler returns it, running the decoder's schedule backwards (t = 0 … 999).

use super::{emit, DecoderEps, Event, Observer, Stage, StepEvent, UnCLIPPipeline};
use crate::backend::{Backend, Tensor};
use crate::error::{Error, Result};
use crate::image_processor::RgbaImage;
use crate::schedulers::{ddim_inversion_coefficients, predicted_epsilon_coefficients, PredictionType};
use crate::settings::GenerateParams;
use crate::time::now_ms;

impl<B: Backend> UnCLIPPipeline<B> {
    /// The noise x_T (C·S·S values) from which DDIM, conditioned on `embedding` with `p`'s caption, steps and
    /// decoder guidance, returns (approximately) `image` at the decoder's resolution. Reports a step event per
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
        // the image at the decoder's resolution, in the decoder's [-1, 1]: (1, 3, S, S)
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
            let event = StepEvent::new(Stage::Inversion, k, &ascending, [&x, &eps, &x0, &next], guided.as_ref(), start);
            emit!(obs, Event::Step(event));
            x = next;
        }
        emit!(obs, Event::StageEnd { stage: Stage::Inversion, elapsed_ms: now_ms() - start });
        x.to_vec().await
    }
}
