//! Editing a picture instead of starting from noise, training-free on any unCLIP model:
//!
//! * **img2img** — SDEdit (Meng et al. 2021, "SDEdit: Guided Image Synthesis and Editing with Stochastic
//!   Differential Equations", Algorithm 1): the image is noised to `t = strength·T` with the model's own schedule
//!   and the reverse process runs from there. It runs at both resolutions, as DeepFloyd IF's cascaded img2img does
//!   (diffusers `IFImg2ImgPipeline` then `IFImg2ImgSuperResolutionPipeline`): the decoder starts from the image at
//!   its size, super-res from the image at the output size, conditioned on the decoder's result.
//!   Timesteps as diffusers' img2img pipelines cut them: the last `int(steps · strength)` of the schedule.
//! * **inpainting** — RePaint (Lugmayr et al. 2022, eq. 8 and Algorithm 1): after every step the kept region of
//!   x_{t−1} is replaced by the original noised to t−1, at both stages; with `resample` U > 1 each step is redone U
//!   times, going back from t−1 to t through q(x_t | x_{t−1}) in between (Algorithm 1 with jump length 1).
//!   The mask is white where to paint and black where to keep; the output-size mask is cut at ½, so a kept pixel
//!   comes out as the input's pixel (the input fitted to the output size, to 8-bit rounding).
//!
//! Strength 1 starts from the very noise [`UnCLIPPipeline::generate`] draws (ᾱ₉₉₉ ≈ 2·10⁻⁹, so "the image noised to
//! t = 999" is that noise to 5·10⁻⁵), which makes an img2img at strength 1 the plain generation, bit for bit.
//!
//! The conditioning: the prompt through the prior, as `generate`; with an empty prompt and a model that has an image
//! tower, the image's own embedding (as a variation), so "no prompt" means "more of this picture".
//!
//! Generator draws, in order: the prior's (when it runs); per stage one normal draw of the latent shape (the start),
//! then per step the sampler's noise, then (inpainting) the noise that takes the original to t−1, then (U > 1) the
//! noise of the jump back.

use crate::backend::{Backend, Tensor};
use crate::error::{ensure_in, ensure_setting, Error, Result};
use crate::image_processor::{shortest_edge_size, RgbImage, RgbaImage, Window};
use crate::pipeline::{GenerateOutput, Observer, UnCLIPPipeline};
use crate::rng::TorchGenerator;
use crate::schedulers::UnCLIPScheduler;
use crate::settings::GenerateParams;

/// img2img's strength where a person has not chosen one (the page's and `unclip img2img`'s): a redraw that keeps
/// the picture's layout. Inpainting's is [`EditParams::default`]'s, 1.
pub const IMG2IMG_STRENGTH: f32 = 0.6;

/// RePaint's resampling count U is at most this (each step then costs U model calls; the paper uses 10).
pub const MAX_RESAMPLE: usize = 20;

/// What to edit: the image, and for inpainting the mask.
#[derive(Debug, Clone)]
pub struct EditParams {
    pub image: RgbaImage,
    /// White = paint here, black = keep (any size: stretched over the image; alpha counts as black). `None` =
    /// img2img.
    pub mask: Option<RgbaImage>,
    /// How far into the noise the image goes: 0 gives it back, 1 is a new picture (inpainting: usually 1).
    pub strength: f32,
    /// RePaint's U: each inpainting step is run this many times (1 = plain RePaint replacement).
    pub resample: usize,
}

/// No image yet (0×0, which `validate` refuses): fill `image` in.
impl Default for EditParams {
    fn default() -> Self {
        EditParams {
            image: RgbaImage { width: 0, height: 0, rgba: Vec::new() },
            mask: None,
            strength: 1.0,
            resample: 1,
        }
    }
}

impl EditParams {
    pub fn validate(&self) -> Result<()> {
        self.image.check()?;
        if let Some(mask) = &self.mask {
            mask.check().map_err(|e| Error::Settings(format!("the mask: {e}")))?;
        }
        Self::check_settings(self.strength, self.resample, self.mask.is_some())
    }

    /// The checks of an edit's settings without its pictures (a PNG's settings record, [`crate::image_settings`]).
    pub fn check_settings(strength: f32, resample: usize, masked: bool) -> Result<()> {
        ensure_in(strength, 0.0..=1.0, |s| {
            format!("strength must be a number from 0 (keep the image) to 1 (a new picture), got {s}")
        })?;
        ensure_in(resample, 1..=MAX_RESAMPLE, |r| {
            format!(
                "RePaint's resampling count must be between 1 (none) and {MAX_RESAMPLE} (got {r}); the paper uses 10"
            )
        })?;
        ensure_setting(resample == 1 || masked, || "resampling is part of inpainting: give a mask too".into())
    }
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// img2img (no mask) or inpainting (a mask) of `e.image` with `p`'s prompt, seed, steps, guidance and sampler.
    pub async fn edit<O: Observer<B::Tensor>>(
        &self,
        p: &GenerateParams,
        e: &EditParams,
        obs: &mut O,
    ) -> Result<GenerateOutput> {
        p.validate()?;
        e.validate()?;
        if p.decoder_latents.is_some() {
            return Err(Error::Settings(
                "an edit starts the decoder from the image, so it takes no initial noise (decoder_latents)".into(),
            ));
        }
        let mut rng = TorchGenerator::new(p.seed);
        let text = self.encode_text(&p.prompt, &p.negative_prompt, p.do_classifier_free_guidance(), obs).await?;
        let embedding = match &p.image_embedding {
            Some(given) => self.embedding_tensor(given)?,
            None if p.prompt.trim().is_empty() && self.image_encoder.is_some() => {
                self.embedding_tensor(&self.embed_image(&e.image).await?)?
            }
            None => self.sample_prior(p, &text, &mut rng, obs).await?.embedding,
        };
        self.decode(p, &text, &embedding, &mut rng, obs, Some(e)).await
    }
}

/// The last `int(steps · strength)` timesteps of a schedule (diffusers img2img `get_timesteps`).
pub fn strength_timesteps(timesteps: &[usize], strength: f32) -> &[usize] {
    let n = timesteps.len();
    let keep = ((n as f64 * strength as f64) as usize).min(n);
    &timesteps[n - keep..]
}

/// The mask over the window [`RgbImage::fit_square`] cuts from an image of (h, w): stretched to the image's fitted
/// size, the same centered square. One value per pixel: the mean of R, G, B weighted by alpha, in [0, 1].
fn fitted_mask(mask: &RgbaImage, image_h: usize, image_w: usize, size: usize) -> Result<Vec<f32>> {
    let (oh, ow) = shortest_edge_size(image_h, image_w, size);
    let on_black = RgbImage {
        width: mask.width,
        height: mask.height,
        rgb: mask
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [0, 1, 2].map(|c| (p[c] as u32 * p[3] as u32 / 255) as u8))
            .collect(),
    };
    let m = on_black.resize_window(oh, ow, Window::centered(oh, ow, size, size)?);
    Ok(m.rgb.chunks_exact(3).map(|p| (p[0] as f32 + p[1] as f32 + p[2] as f32) / (3.0 * 255.0)).collect())
}

/// One stage's edit: the original at the stage's size, the mask (1 = paint) and the timesteps to run.
pub(crate) struct StageEdit<T> {
    /// (1, C, S, S) in [-1, 1].
    known: T,
    /// (1, C, S, S), 0 or 1; `None` for img2img.
    mask: Option<T>,
    /// The stage's timesteps, cut by strength.
    pub timesteps: Vec<usize>,
    /// Whether the cut schedule is the whole one (strength 1: start from the noise `generate` draws).
    whole: bool,
    resample: usize,
}

/// How a stage binarises its mask: the decoder paints wherever any paint reaches (its low resolution must cover
/// the region), the output stage where the mask is at least ½ (so kept pixels are kept exactly).
#[derive(Clone, Copy)]
pub(crate) enum MaskCut {
    Any,
    Half,
}

impl<T: Tensor> StageEdit<T> {
    pub(crate) fn new<B: Backend<Tensor = T>>(
        be: &B,
        edit: &EditParams,
        channels: usize,
        size: usize,
        all_timesteps: &[usize],
        cut: MaskCut,
    ) -> Result<Self> {
        if channels != 3 {
            return Err(Error::Model(format!(
                "editing an image needs RGB stages, this model's have {channels} channels"
            )));
        }
        let rgb = edit.image.to_rgb();
        let pixels = rgb.fit_square(size)?.to_chw([1.0 / 127.5; 3], [-1.0; 3]);
        let known = be.tensor(pixels, &[1, channels, size, size])?;
        let mask = match &edit.mask {
            Some(m) => {
                let values = fitted_mask(m, rgb.height, rgb.width, size)?;
                let threshold = match cut {
                    MaskCut::Any => 0.1, // above the ringing of bicubic resampling next to a stroke
                    MaskCut::Half => 0.5,
                };
                let binary: Vec<f32> = values.iter().map(|&v| if v >= threshold { 1.0 } else { 0.0 }).collect();
                Some(be.tensor(binary.repeat(channels), &[1, channels, size, size])?)
            }
            None => None,
        };
        let timesteps = strength_timesteps(all_timesteps, edit.strength).to_vec();
        Ok(StageEdit { known, mask, whole: timesteps.len() == all_timesteps.len(), timesteps, resample: edit.resample })
    }

    /// How many times each step runs (RePaint's U).
    pub(crate) fn resample(&self) -> usize {
        self.resample
    }

    /// The stage's starting latent: the original noised to the first timestep (SDEdit), or at strength 1 the
    /// normal draw itself; with no timesteps (strength 0) the original.
    pub(crate) fn start(&self, s: &UnCLIPScheduler, draw: T) -> Result<T> {
        match self.timesteps.first() {
            None => Ok(self.known.clone()),
            Some(_) if self.whole => Ok(draw),
            Some(&t) => q_sample(s, &self.known, t, &draw),
        }
    }

    /// RePaint's replacement after a step to `prev_t` (`None`: the clean image): x = m·x + (1 − m)·q(x_prev | x0).
    /// Draws the forward noise only when the step lands above t = 0.
    fn blend(
        &self,
        be: &impl Backend<Tensor = T>,
        s: &UnCLIPScheduler,
        x: T,
        prev_t: Option<usize>,
        rng: &mut TorchGenerator,
    ) -> Result<T> {
        let Some(mask) = &self.mask else { return Ok(x) };
        let known_prev = match prev_t {
            None => self.known.clone(),
            Some(t) => q_sample(s, &self.known, t, &be.tensor(rng.randn(self.known.elem_count()), self.known.dims())?)?,
        };
        known_prev.add(&x.sub(&known_prev)?.mul(mask)?)
    }

    /// RePaint's jump back from `prev_t` (or the clean level) up to `t`: q(x_t | x_prev) =
    /// N(√(ᾱ_t/ᾱ_prev)·x_prev, (1 − ᾱ_t/ᾱ_prev)·I).
    fn jump_back(
        &self,
        be: &impl Backend<Tensor = T>,
        s: &UnCLIPScheduler,
        x: &T,
        t: usize,
        prev_t: Option<usize>,
        rng: &mut TorchGenerator,
    ) -> Result<T> {
        let a_t = s.alphas_cumprod()[t];
        let a_prev = prev_t.map_or(1.0, |p| s.alphas_cumprod()[p]);
        let ratio = a_t / a_prev;
        let z = be.tensor(rng.randn(x.elem_count()), x.dims())?;
        x.affine(ratio.sqrt(), 0.0)?.add(&z.affine((1.0 - ratio).max(0.0).sqrt(), 0.0)?)
    }
}

/// The forward process q(x_t | x0): √ᾱ_t·x0 + √(1−ᾱ_t)·ε, with the scheduler's own coefficients (DDPM eq. 4).
fn q_sample<T: Tensor>(s: &UnCLIPScheduler, x0: &T, t: usize, eps: &T) -> Result<T> {
    let c = s.add_noise_coefficients(t)?;
    x0.affine(c.sqrt_alpha_prod, 0.0)?.add(&eps.affine(c.sqrt_one_minus_alpha_prod, 0.0)?)
}

/// What a step of an editing stage leads to: another round from x_t (RePaint's resampling), or x_{t−1}.
pub(crate) enum Settled<T> {
    Again(T),
    Done(T),
}

/// After a step to `prev_t`: with an edit, RePaint's replacement of the kept region and, when `again` (not the
/// step's last round), the jump back up to `t`; without one, the step's result as it is.
#[allow(clippy::too_many_arguments)]
pub(crate) fn settle<B: Backend>(
    edit: Option<&StageEdit<B::Tensor>>,
    be: &B,
    s: &UnCLIPScheduler,
    prev: B::Tensor,
    t: usize,
    prev_t: Option<usize>,
    again: bool,
    rng: &mut TorchGenerator,
) -> Result<Settled<B::Tensor>> {
    let Some(e) = edit else { return Ok(Settled::Done(prev)) };
    let prev = e.blend(be, s, prev, prev_t, rng)?;
    Ok(if again { Settled::Again(e.jump_back(be, s, &prev, t, prev_t, rng)?) } else { Settled::Done(prev) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_cuts_the_schedule_as_diffusers_img2img() {
        let ts: Vec<usize> = (0..7).rev().map(|i| i * 166).collect();
        assert_eq!(strength_timesteps(&ts, 1.0), &ts[..]);
        assert!(strength_timesteps(&ts, 0.0).is_empty());
        assert_eq!(strength_timesteps(&ts, 0.5), &ts[4..]); // int(7 · 0.5) = 3 steps
        assert_eq!(strength_timesteps(&ts, 0.99), &ts[1..]); // int(6.93) = 6
    }

    #[test]
    fn settings_are_checked_with_a_sentence() {
        let bad = |p: EditParams| p.validate().unwrap_err().to_string();
        let ok = EditParams { image: RgbaImage::new(1, 1, vec![0; 4]).unwrap(), ..Default::default() };
        assert!(ok.validate().is_ok());
        assert!(bad(EditParams::default()).contains("0×0 pixels"), "the default has no image yet");
        assert!(bad(EditParams { strength: f32::NAN, ..ok.clone() }).contains("strength must be"));
        assert!(bad(EditParams { strength: 1.5, ..ok.clone() }).contains("from 0"));
        assert!(bad(EditParams { resample: 0, ..ok.clone() }).contains("between 1"));
        assert!(bad(EditParams { resample: 3, ..ok }).contains("give a mask"));
    }

    #[test]
    fn the_mask_is_cut_with_the_image_and_alpha_is_black() {
        // a 4×2 mask over an 8×4 image: the fitted square is the middle half, where the mask is white
        let px = |v: u8, a: u8| [v, v, v, a];
        let row: Vec<u8> = [px(0, 255), px(255, 255), px(255, 255), px(0, 255)].concat();
        let mask = RgbaImage::new(4, 2, row.repeat(2)).unwrap();
        let m = fitted_mask(&mask, 4, 8, 2).unwrap();
        assert!(m.iter().all(|&v| v > 0.9), "{m:?}");
        let clear = RgbaImage::new(1, 1, px(255, 0).to_vec()).unwrap();
        assert_eq!(fitted_mask(&clear, 1, 1, 1).unwrap(), [0.0]);
    }
}
