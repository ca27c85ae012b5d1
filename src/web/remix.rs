//! The remix half of the wasm API (DALL·E 2's CLIP-latent features): embeddings of prompts, images and
//! texts, DDIM inversion, and the frame embeddings of an interpolation or a text diff. A frame itself is
//! decoded by `Engine.generate` with `image_embedding` (and, after an inversion, `decoder_latents`)
//! in its params, so it streams the same step events as a generation.

use std::rc::Rc;

use js_sys::{Array, Float32Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::engine::{on_backend, previews_of, Engine, Inner};
use super::events::JsObserver;
use super::{from_js, js_error, JsResult};
use crate::backend::Backend;
use crate::image_processor::RgbaImage;
use crate::latent;
use crate::pipeline::{GenerateParams, Previews};

fn floats(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

async fn embed_prompt_on<B: Backend>(inner: Rc<Inner<B>>, params: JsValue, on_event: Function) -> JsResult<JsValue> {
    let params = from_js::<GenerateParams>(params)?;
    inner.cancel.set(false);
    let mut sink = JsObserver::new(on_event, &inner.cancel, Previews::default());
    let result = inner.pipeline.embed_prompt(&params, &mut sink).await;
    Ok(floats(&sink.outcome(result)?))
}

async fn embed_image_on<B: Backend>(inner: Rc<Inner<B>>, image: crate::Result<RgbaImage>) -> JsResult<JsValue> {
    Ok(floats(&inner.pipeline.embed_image(&image.map_err(js_error)?).await.map_err(js_error)?))
}

async fn text_embedding_on<B: Backend>(inner: Rc<Inner<B>>, prompt: String) -> JsResult<JsValue> {
    Ok(floats(&inner.pipeline.text_embedding(&prompt).await.map_err(js_error)?))
}

async fn invert_on<B: Backend>(
    inner: Rc<Inner<B>>,
    image: crate::Result<RgbaImage>,
    embedding: Vec<f32>,
    params: JsValue,
    on_event: Function,
    previews: JsValue,
) -> JsResult<JsValue> {
    let (image, params) = (image.map_err(js_error)?, from_js::<GenerateParams>(params)?);
    inner.cancel.set(false);
    let mut sink = JsObserver::new(on_event, &inner.cancel, previews_of(previews)?);
    let result = inner.pipeline.invert(&image, &embedding, &params, &mut sink).await;
    Ok(floats(&sink.outcome(result)?))
}

#[wasm_bindgen]
impl Engine {
    /// Whether the model can embed images (it ships an image encoder).
    #[wasm_bindgen(js_name = hasImageEncoder)]
    pub fn has_image_encoder(&self) -> bool {
        on_backend!(self, i => i.pipeline.image_encoder.is_some())
    }

    /// A prompt's image embedding through the prior (params as for `generate`; text and prior events).
    /// Resolves to a Float32Array.
    #[wasm_bindgen(js_name = embedPrompt)]
    pub fn embed_prompt(&self, params: JsValue, on_event: Function) -> Promise {
        on_backend!(self, i => future_to_promise(embed_prompt_on(i.clone(), params, on_event)))
    }

    /// The image embedding of `width`×`height` RGBA pixels (a canvas' ImageData) through the model's
    /// image processor and image tower. Resolves to a Float32Array.
    #[wasm_bindgen(js_name = embedImage)]
    pub fn embed_image(&self, rgba: Vec<u8>, width: usize, height: usize) -> Promise {
        let image = RgbaImage::new(width, height, rgba);
        on_backend!(self, i => future_to_promise(embed_image_on(i.clone(), image)))
    }

    /// A prompt's text embedding z_t (what text diffs subtract). Resolves to a Float32Array.
    #[wasm_bindgen(js_name = textEmbedding)]
    pub fn text_embedding(&self, prompt: String) -> Promise {
        on_backend!(self, i => future_to_promise(text_embedding_on(i.clone(), prompt)))
    }

    /// DDIM inversion of the decoder: the noise x_T from which DDIM (η = 0) with `params` decodes the
    /// image, conditioned on `embedding`; step events under the stage "inversion". Resolves to a
    /// Float32Array to pass as `decoder_latents`. `previews` as for `generate`.
    #[allow(clippy::too_many_arguments)]
    pub fn invert(
        &self,
        rgba: Vec<u8>,
        width: usize,
        height: usize,
        embedding: Vec<f32>,
        params: JsValue,
        on_event: Function,
        previews: JsValue,
    ) -> Promise {
        let image = RgbaImage::new(width, height, rgba);
        on_backend!(self, i => future_to_promise(invert_on(i.clone(), image, embedding, params, on_event, previews)))
    }
}

fn frames(v: crate::Result<Vec<Vec<f32>>>) -> JsResult<Array> {
    Ok(v.map_err(js_error)?.iter().map(|f| floats(f)).collect())
}

/// The `n` embeddings of an interpolation from `a` to `b` (slerp; frame 0 = a, frame n−1 = b).
#[wasm_bindgen(js_name = interpolationFrames)]
pub fn interpolation_frames(a: &[f32], b: &[f32], n: usize) -> JsResult<Array> {
    frames(latent::interpolation(a, b, n))
}

/// The `n` embeddings of a text diff: `image` rotated towards normalise(target − current) for θ from
/// 0 to `max_theta`.
#[wasm_bindgen(js_name = textDiffFrames)]
pub fn text_diff_frames(image: &[f32], current: &[f32], target: &[f32], n: usize, max_theta: f32) -> JsResult<Array> {
    frames(latent::text_diff_frames(image, current, target, n, max_theta))
}

fn params_to_js(p: &GenerateParams) -> JsResult<JsValue> {
    Ok(serde_wasm_bindgen::to_value(p)?)
}

/// The `generate` params of one interpolation or text-diff frame: `base`'s steps, guidance and sampler,
/// decoding `embedding` from `seed` with the empty caption (crate::remix::frame_params).
#[wasm_bindgen(js_name = frameParams)]
pub fn frame_params(base: JsValue, embedding: Vec<f32>, seed: u64) -> JsResult<JsValue> {
    params_to_js(&crate::remix::frame_params(&from_js::<GenerateParams>(base)?, embedding, seed))
}

/// The `generate` params of variation `k` (seed base.seed + k; after an inversion, from its noise with
/// DDIM at base.ddim_eta) (crate::remix::variation_params).
#[wasm_bindgen(js_name = variationParams)]
pub fn variation_params(base: JsValue, embedding: Vec<f32>, inverted: Option<Vec<f32>>, k: usize) -> JsResult<JsValue> {
    params_to_js(&crate::remix::variation_params(&from_js::<GenerateParams>(base)?, &embedding, inverted.as_deref(), k))
}
