//! What a run tells the page: every [`Event`] of the pipeline becomes one [`Message`] for the JS callback
//! (www/js/protocol.js lists the fields), and the run yields to the event loop after each so `cancel()` can land.

use std::cell::Cell;

use js_sys::{Float32Array, Function, Promise, Reflect, Uint8ClampedArray};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{js_error, optional_js, to_js, JsResult};
use crate::backend::{Backend, Tensor};
use crate::image_processor::{chw_to_hwc01, hwc_to_rgba8};
use crate::pipeline::{Event, Flow, Observer, Preview, Previews, Stage, StepEvent, UnCLIPPipeline};

/// One event as the page receives it: {type: "stage_start" | "step" | "stage_end" | "warning", …}.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Message {
    StageStart {
        stage: &'static str,
        steps: u32,
    },
    Step(StepMessage),
    StageEnd {
        stage: &'static str,
        ms: f64,
        /// The text stage's: the prompt's text embedding z_t, when the run asked for the prior's embeddings.
        #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
        text_embedding: Option<Float32Array>,
    },
    Warning {
        message: String,
    },
}

/// A step: where it is, and what the page draws of it.
#[derive(Serialize, Default)]
struct StepMessage {
    stage: &'static str,
    i: u32,
    n: u32,
    t: u32,
    /// Milliseconds since the stage started.
    ms: f64,
    /// The prior's x̂0 in CLIP space and its cosine to the prompt's text embedding (the teaching page's prior
    /// panel; prior steps only; the text embedding came in the text stage's end).
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    embedding: Option<Float32Array>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cosine: Option<f32>,
    /// x_t and x̂0 as RGBA of `width`×`height` (decoder, super-res and inversion steps).
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    xt: Option<Uint8ClampedArray>,
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    x0: Option<Uint8ClampedArray>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    /// The (guided) ε̂ and, under guidance, the two predictions it combines, as CHW floats.
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    eps: Option<Float32Array>,
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    eps_uncond: Option<Float32Array>,
    #[serde(serialize_with = "optional_js", skip_serializing_if = "Option::is_none")]
    eps_cond: Option<Float32Array>,
}

/// The prior's de-normalisation (x·clip_std + clip_mean) and the prompt's text embedding z_t, on the host.
pub(super) struct PriorView {
    clip_mean: Vec<f32>,
    clip_std: Vec<f32>,
    /// From the run's own text stage ([`Event::TextEncoded`]), so the prompt is encoded once.
    text_embedding: Vec<f32>,
}

impl PriorView {
    /// None for a model without a prior (an image-variation checkpoint).
    pub async fn of<B: Backend>(p: &UnCLIPPipeline<B>) -> crate::Result<Option<Self>> {
        let Some(prior) = &p.prior else { return Ok(None) };
        Ok(Some(PriorView {
            clip_mean: prior.clip_mean.to_vec().await?,
            clip_std: prior.clip_std.to_vec().await?,
            text_embedding: Vec::new(),
        }))
    }

    /// (z, cos(z, z_t)) for the first row of the prior's x̂0 (normalised space); the cosine is NaN
    /// (null in JS) when z has no direction (an untrained prior's clip_std = 0 makes all-zero embeddings).
    fn embedding(&self, x0: &[f32]) -> (Vec<f32>, f32) {
        let x0 = &x0[..self.clip_mean.len()];
        let z: Vec<f32> = x0.iter().zip(&self.clip_std).zip(&self.clip_mean).map(|((x, s), m)| x * s + m).collect();
        let cos = crate::latent::cosine_similarity(&z, &self.text_embedding).unwrap_or(f32::NAN);
        (z, cos)
    }
}

/// Sends each event to `on_event`, with the step tensors the run asked for, and stops the run when the page
/// cancelled it.
pub(super) struct JsObserver<'a> {
    on_event: Function,
    cancel: &'a Cell<bool>,
    previews: Previews,
    /// Why the observer stopped the run, when it was not the user.
    error: Option<crate::Error>,
    /// For the teaching page's prior panel: what turns the prior's x̂0 into CLIP space.
    pub prior: Option<PriorView>,
}

impl<'a> JsObserver<'a> {
    pub fn new(on_event: Function, cancel: &'a Cell<bool>, previews: Previews) -> Self {
        JsObserver { on_event, cancel, previews, error: None, prior: None }
    }

    /// The run's result; when a preview could not be read back (a lost GPU) and that stopped the run,
    /// the reason instead of "cancelled".
    pub fn outcome<T>(self, result: crate::Result<T>) -> JsResult<T> {
        self.error.map_or(result, Err).map_err(js_error)
    }

    /// The page's message for `event` (none for the text embeddings, which the text stage's end carries);
    /// reading tensors back can fail (a lost GPU).
    async fn message<T: Tensor>(&mut self, event: Event<'_, T>) -> crate::Result<Option<Message>> {
        Ok(Some(match event {
            Event::StageStart { stage, steps } => Message::StageStart { stage: stage.name(), steps: steps as u32 },
            Event::TextEncoded { text_embeds } => {
                if let Some(view) = self.prior.as_mut().filter(|_| self.previews.kinds.contains(&Preview::Embedding)) {
                    let rows = text_embeds.to_vec().await?;
                    view.text_embedding = rows[rows.len() - text_embeds.dim(1)..].to_vec();
                }
                return Ok(None);
            }
            Event::StageEnd { stage, elapsed_ms } => {
                let z_t = self.prior.as_ref().filter(|v| stage == Stage::Text && !v.text_embedding.is_empty());
                let text_embedding = z_t.map(|v| Float32Array::from(&v.text_embedding[..]));
                Message::StageEnd { stage: stage.name(), ms: elapsed_ms, text_embedding }
            }
            Event::Warning(message) => Message::Warning { message },
            Event::Step(s) => Message::Step(self.step(s).await?),
        }))
    }

    async fn step<T: Tensor>(&self, s: StepEvent<'_, T>) -> crate::Result<StepMessage> {
        let mut m = StepMessage {
            stage: s.stage.name(),
            i: s.i as u32,
            n: s.n as u32,
            t: s.t as u32,
            ms: s.elapsed_ms,
            ..Default::default()
        };
        // only what the run asked for is read back: each read-back waits for the GPU (docs/architecture.md,
        // "Step previews")
        let wants = |kind| self.previews.wants(kind, s.i, s.n);
        if s.stage == Stage::Prior {
            // the prior's current guess of the image embedding, in CLIP space, against the text's
            if let Some(view) = self.prior.as_ref().filter(|_| wants(Preview::Embedding)) {
                let (z, cos) = view.embedding(&s.pred_x0.to_vec().await?);
                m.embedding = Some(Float32Array::from(&z[..]));
                m.cosine = Some(cos);
            }
            return Ok(m);
        }
        for (kind, tensor, field) in [(Preview::Xt, s.sample, &mut m.xt), (Preview::X0, s.pred_x0, &mut m.x0)] {
            if wants(kind) {
                *field = Some(rgba(tensor).await?);
                (m.width, m.height) = (Some(tensor.dim(3) as u32), Some(tensor.dim(2) as u32));
            }
        }
        if wants(Preview::Eps) {
            m.eps = Some(floats(s.model_output).await?);
            if let Some([u, c]) = s.guidance {
                m.eps_uncond = Some(floats(u).await?);
                m.eps_cond = Some(floats(c).await?);
            }
            (m.width, m.height) = (Some(s.model_output.dim(3) as u32), Some(s.model_output.dim(2) as u32));
        }
        Ok(m)
    }
}

/// The first image of a (N, C, H, W) batch as RGBA.
async fn rgba<T: Tensor>(t: &T) -> crate::Result<Uint8ClampedArray> {
    let (c, h, w) = (t.dim(1), t.dim(2), t.dim(3));
    let data = t.to_vec().await?;
    Ok(Uint8ClampedArray::from(&hwc_to_rgba8(&chw_to_hwc01(&data[..c * h * w], c, h, w))[..]))
}

async fn floats<T: Tensor>(t: &T) -> crate::Result<Float32Array> {
    Ok(Float32Array::from(&t.to_vec().await?[..]))
}

/// Resolves on the next macrotask (setTimeout 0), so queued worker messages run.
async fn yield_to_event_loop() {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout =
            Reflect::get(&js_sys::global(), &"setTimeout".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&JsValue::NULL, &resolve, &0.into());
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(promise).await;
}

impl<T: Tensor> Observer<T> for JsObserver<'_> {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        let message = match self.message(event).await {
            Ok(Some(message)) => message,
            Ok(None) => return Flow::Continue,
            Err(e) => {
                self.error = Some(e);
                return Flow::Cancel;
            }
        };
        // a message always serializes (plain fields and typed arrays)
        if let Ok(message) = to_js(&message) {
            let _ = self.on_event.call1(&JsValue::NULL, &message);
        }
        yield_to_event_loop().await;
        if self.cancel.get() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}
