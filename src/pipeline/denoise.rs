//! The reverse process every stage runs (prior, decoder, super-res; with an edit, SDEdit / RePaint): for each
//! timestep, the model's prediction → the sampler's coefficients → the noise → the scheduler's step → an event.
//! Generator draws per step, in order: the sampler's noise (x's shape, when the step adds noise), then the edit's
//! ([`crate::edit::settle`]).

use super::{emit, Event, Guided, Observer, Stage, StepEvent, UnCLIPPipeline};
use crate::backend::{Backend, StepCoefficients, StepOperands, Tensor};
use crate::edit::{settle, Settled, StageEdit};
use crate::error::Result;
use crate::rng::TorchGenerator;
use crate::schedulers::{ddim_step_coefficients, UnCLIPScheduler};
use crate::settings::{GenerateParams, Sampler};
use crate::time::now_ms;

/// One stage's reverse process: what it reports as, its scheduler, sampler and timesteps, and what an edit keeps.
pub(crate) struct Denoising<'a, T> {
    pub stage: Stage,
    pub scheduler: &'a UnCLIPScheduler,
    pub sampler: Sampler,
    pub ddim_eta: f32,
    pub timesteps: &'a [usize],
    pub edit: Option<&'a StageEdit<T>>,
}

impl<'a, T: Tensor> Denoising<'a, T> {
    /// A stage of the decoder or super-res: `p`'s sampler on `all` timesteps, or those an edit keeps of them.
    pub fn new(
        stage: Stage,
        scheduler: &'a UnCLIPScheduler,
        p: &GenerateParams,
        all: &'a [usize],
        edit: Option<&'a StageEdit<T>>,
    ) -> Self {
        let timesteps = edit.map_or(all, |e| &e.timesteps);
        Denoising { stage, scheduler, sampler: p.sampler, ddim_eta: p.ddim_eta, timesteps, edit }
    }

    /// The starting latent x_T: the normal draw, or an edit's start from it.
    pub fn start(&self, draw: T) -> Result<T> {
        match self.edit {
            Some(e) => e.start(self.scheduler, draw),
            None => Ok(draw),
        }
    }
}

impl Sampler {
    /// The step coefficients from t to `prev` (None: the last step) on `s`; `ddim_eta` is DDIM's η.
    pub(crate) fn coefficients(
        self,
        s: &UnCLIPScheduler,
        t: usize,
        prev: Option<usize>,
        ddim_eta: f32,
    ) -> Result<StepCoefficients> {
        Ok(match self {
            Sampler::Ddpm => s.step_coefficients(t, prev)?,
            Sampler::Ddim => ddim_step_coefficients(s, t, prev, ddim_eta)?,
        })
    }
}

/// A model call's prediction at x_t: what the scheduler steps with (ε̂ or x̂0, guided under CFG), the learned
/// variance channels v where the scheduler uses them, and under CFG the two predictions the output combines.
pub(crate) struct Prediction<T> {
    pub output: T,
    pub variance: Option<T>,
    pub guidance: Option<Guided<T>>,
}

impl<B: Backend> UnCLIPPipeline<B> {
    /// Runs `d` from x = x_T, calling `model(x_t, t)` at every step (RePaint's resampling: U times); returns x_0.
    pub(crate) async fn denoise<O: Observer<B::Tensor>>(
        &self,
        d: &Denoising<'_, B::Tensor>,
        mut x: B::Tensor,
        rng: &mut TorchGenerator,
        obs: &mut O,
        mut model: impl FnMut(&B::Tensor, usize) -> Result<Prediction<B::Tensor>>,
    ) -> Result<B::Tensor> {
        let start = now_ms();
        emit!(obs, Event::StageStart { stage: d.stage, steps: d.timesteps.len() });
        for (i, &t) in d.timesteps.iter().enumerate() {
            let prev_t = d.timesteps.get(i + 1).copied();
            let rounds = d.edit.map_or(1, |e| e.resample());
            for round in 0..rounds {
                let pred = model(&x, t)?;
                let c = d.sampler.coefficients(d.scheduler, t, prev_t, d.ddim_eta)?;
                let noise = if c.noise.is_some() { Some(self.randn(rng, x.dims())?) } else { None };
                let operands = StepOperands {
                    model: &pred.output,
                    log_variance_frac: pred.variance.as_ref(),
                    sample: &x,
                    noise: noise.as_ref(),
                };
                let (prev, x0) = B::Tensor::scheduler_step(operands, &c)?;
                let prev = match settle(d.edit, &self.be, d.scheduler, prev, t, prev_t, round + 1 < rounds, rng)? {
                    Settled::Again(x_t) => {
                        x = x_t;
                        continue;
                    }
                    Settled::Done(prev) => prev,
                };
                let tensors = [&x, &pred.output, &x0, &prev];
                let event = StepEvent::new(d.stage, i, d.timesteps, tensors, pred.guidance.as_ref(), start);
                emit!(obs, Event::Step(event));
                x = prev;
            }
        }
        emit!(obs, Event::StageEnd { stage: d.stage, elapsed_ms: now_ms() - start });
        Ok(x)
    }
}
