//! Stages 3–5 for one image embedding: the decoder (text_proj's conditioning, CFG, learned variance;
//! docs/math.md §7–§8), super-res (the bicubic-AA upsample as its condition; §10) and the post-processing
//! to pixels (§12). With an edit, each stage starts from the image instead of noise ([`crate::edit`]).

use super::{emit, Denoising, Event, GenerateOutput, Guided, Observer, Prediction, TextConditioning, UnCLIPPipeline};
use crate::backend::{Backend, Tensor};
use crate::edit::{EditParams, MaskCut, StageEdit};
use crate::error::{Error, Result};
use crate::image_processor::chw_to_hwc01;
use crate::models::DecoderConditioning;
use crate::nn::resize::resize_bicubic_aa;
use crate::pipeline::Stage;
use crate::rng::TorchGenerator;
use crate::schedulers::{PredictionType, VarianceType};
use crate::settings::GenerateParams;

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

impl<B: Backend> UnCLIPPipeline<B> {
    /// 3.–5. decoder, super-res, post-processing for one image embedding (1, E); with `edit` the SDEdit /
    /// RePaint version of both stages ([`crate::edit`]).
    pub async fn decode<O: Observer<B::Tensor>>(
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

        // 3. decoder: x_T (1, C, S, S) → the 64×64-class image, ε̂ and v from the UNet (docs/math.md §8)
        let dc = &self.decoder.config;
        let (ch, size) = (dc.in_channels, dc.sample_size);
        let sched = &self.decoder_scheduler;
        let all = sched.set_timesteps(p.decoder_steps)?;
        let stage_edit = edit.map(|e| StageEdit::new(&self.be, e, ch, size, &all, MaskCut::Any)).transpose()?;
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
        let d = Denoising::new(Stage::Decoder, sched, p, &all, stage_edit.as_ref());
        let x = self
            .denoise(&d, d.start(draw)?, rng, obs, |x, t| {
                let DecoderEps { eps, var, guided } = self.decoder_eps(x, t, &cond, p.decoder_guidance)?;
                let variance = if cond.learned_variance { Some(var) } else { None };
                Ok(Prediction { output: eps, variance, guidance: guided })
            })
            .await?;
        let image_small = x.clamp(-1.0, 1.0)?;

        // 4. super-res: bicubic-AA upsample as the condition; `super_res_last` only for the last step (§10)
        let sr = &self.super_res_first.config;
        let (sr_ch, sr_size) = (sr.in_channels / 2, sr.sample_size);
        let upscaled = resize_bicubic_aa(&self.be, &image_small, sr_size, sr_size)?; // (1, C, S', S')
        let sched = &self.super_res_scheduler;
        let all = sched.set_timesteps(p.sr_steps)?;
        if edit.is_none() && sched.prediction_type() == PredictionType::Epsilon && all.len() < MIN_EPSILON_SR_STEPS {
            emit!(obs, Event::Warning(few_sr_steps_warning(&all)));
        }
        let stage_edit = edit.map(|e| StageEdit::new(&self.be, e, sr_ch, sr_size, &all, MaskCut::Half)).transpose()?;
        let draw = self.randn(rng, &[b, sr_ch, sr_size, sr_size])?;
        let d = Denoising::new(Stage::SuperRes, sched, p, &all, stage_edit.as_ref());
        let last = *all.last().expect("≥ 2 steps");
        let x = self
            .denoise(&d, d.start(draw)?, rng, obs, |x, t| {
                // the model for the schedule's last step, also when strength cuts the schedule
                let unet = if t == last { &self.super_res_last } else { &self.super_res_first };
                let input = B::Tensor::cat(&[x, &upscaled], 1)?;
                let eps = self.be.on_pool(|| unet.forward(&input, t))?; // (1, 2C, S', S') → (1, C, S', S')
                Ok(Prediction { output: eps, variance: None, guidance: None })
            })
            .await?;

        // 5. post-process: (x·0.5 + 0.5).clamp(0, 1), NHWC (§12)
        let image = chw_to_hwc01(&x.to_vec().await?, sr_ch, sr_size, sr_size);
        Ok(GenerateOutput { image, height: sr_size, width: sr_size, image_embedding: image_embeddings.to_vec().await? })
    }

    /// The decoder's conditioning: text_proj (docs/math.md §7) and the decoder mask (4 extra tokens always
    /// visible).
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

    /// One decoder call on x (1, C, S, S) (docs/math.md §8.5): the UNet sees [x; x] under CFG and returns
    /// (2, 2C, S, S) with learned variance, ε̂ in the first C channels and v in the rest.
    pub(crate) fn decoder_eps(
        &self,
        x: &B::Tensor,
        t: usize,
        cond: &DecoderCondition<B::Tensor>,
        guidance: f32,
    ) -> Result<DecoderEps<B::Tensor>> {
        let (b, ch) = (x.dim(0), x.dim(1));
        let input = if cond.do_cfg { B::Tensor::cat(&[x, x], 0)? } else { x.clone() };
        let out = self.be.on_pool(|| self.decoder.forward(&input, t, &cond.tp, &cond.mask))?;
        Ok(if cond.do_cfg {
            let var = out.narrow(0, b, b)?.narrow(1, ch, out.dim(1) - ch)?; // the cond half's v
            let guided = Self::guide(&out, b, ch, guidance)?;
            DecoderEps { eps: guided.guided.clone(), var, guided: Some(guided) }
        } else {
            DecoderEps { eps: out.narrow(1, 0, ch)?, var: out.narrow(1, ch, out.dim(1) - ch)?, guided: None }
        })
    }
}
