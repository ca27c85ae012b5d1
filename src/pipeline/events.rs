//! What a run reports: each stage's start and end, every denoising step's tensors, and warnings, to an
//! [`Observer`] that may cancel.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::time::now_ms;

/// The stages a generation goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Text,
    Prior,
    /// DDIM inversion of the decoder: an image → the noise x_T that decodes to it (image variations).
    Inversion,
    Decoder,
    SuperRes,
}

impl Stage {
    /// Every stage, in the order a run can go through them.
    pub const ALL: [Stage; 5] = [Stage::Text, Stage::Prior, Stage::Inversion, Stage::Decoder, Stage::SuperRes];
    /// The stages of a generation.
    pub const GENERATE: [Stage; 4] = [Stage::Text, Stage::Prior, Stage::Decoder, Stage::SuperRes];

    /// The stage's name in events, file names and the page ("text", "prior", "inversion", "decoder", "super_res").
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

/// A classifier-free-guided prediction and the two it combines.
pub struct Guided<T> {
    pub uncond: T,
    pub cond: T,
    pub guided: T,
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
    /// Step i of `timesteps`; tensors = [x_t, model output, x̂0, x_{t-1}]; `start` = the stage's start;
    /// `guidance`: the two predictions a guided output combines.
    pub(crate) fn new(
        stage: Stage,
        i: usize,
        timesteps: &[usize],
        [sample, model_output, pred_x0, prev_sample]: [&'a T; 4],
        guidance: Option<&'a Guided<T>>,
        start: f64,
    ) -> Self {
        StepEvent {
            stage,
            i,
            n: timesteps.len(),
            t: timesteps[i],
            sample,
            model_output,
            pred_x0,
            prev_sample,
            guidance: guidance.map(|g| [&g.uncond, &g.cond]),
            elapsed_ms: now_ms() - start,
        }
    }
}

pub enum Event<'a, T> {
    StageStart {
        stage: Stage,
        steps: usize,
    },
    /// The text stage's embeddings (N, E), [uncond; cond] under guidance: the prompt's z_t is the last row.
    TextEncoded {
        text_embeds: &'a T,
    },
    Step(StepEvent<'a, T>),
    StageEnd {
        stage: Stage,
        elapsed_ms: f64,
    },
    Warning(String),
}

/// A step tensor an observer may read back to the host (docs/architecture.md, "Step previews").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preview {
    /// x_t as RGBA (decoder, super-res, inversion).
    Xt,
    /// x̂0 as RGBA (decoder, super-res, inversion).
    X0,
    /// ε̂ and, under guidance, its unconditional and conditional parts, as CHW floats.
    Eps,
    /// The prior's x̂0 in CLIP space and its cosine to the prompt's text embedding.
    Embedding,
}

/// Which step tensors a run reads back, at which steps: each read-back is a GPU sync on WebGPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previews {
    pub kinds: Vec<Preview>,
    /// Every `every`-th step of a stage (from its first) and its last; 0 = no step.
    pub every: usize,
}

impl Preview {
    pub const ALL: [Preview; 4] = [Preview::Xt, Preview::X0, Preview::Eps, Preview::Embedding];
}

impl Default for Previews {
    /// Every kind at every step.
    fn default() -> Self {
        Previews { kinds: Preview::ALL.to_vec(), every: 1 }
    }
}

impl Previews {
    /// Whether step `i` of `n` reads back `kind`.
    pub fn wants(&self, kind: Preview, i: usize, n: usize) -> bool {
        self.every > 0 && (i % self.every == 0 || i + 1 == n) && self.kinds.contains(&kind)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_every_k_steps_and_the_last() {
        let p = Previews { kinds: vec![Preview::X0], every: 3 };
        let at: Vec<usize> = (0..8).filter(|&i| p.wants(Preview::X0, i, 8)).collect();
        assert_eq!(at, [0, 3, 6, 7]);
        assert!(!p.wants(Preview::Xt, 0, 8));
        assert!(!Previews { kinds: Preview::ALL.to_vec(), every: 0 }.wants(Preview::X0, 0, 8));
        assert!(Preview::ALL.iter().all(|&k| Previews::default().wants(k, 5, 8)));
    }
}
