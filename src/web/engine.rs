//! A loaded model on the CPU (wasm simd128) or on WebGPU, and its generation: `Engine.load`, `info`, `cancel`,
//! `generate` (edit.rs and remix.rs add the engine's other runs).

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Float32Array, Function, Map, Promise, Uint8Array, Uint8ClampedArray};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::events::{JsObserver, PriorView};
use super::{from_js, js_error, to_js, JsResult};
use crate::backend::cpu::Cpu;
use crate::backend::webgpu::{AdapterSummary, WebGpu};
use crate::backend::Backend;
use crate::edit::EditParams;
use crate::image_settings::{ImageSettings, ModelIdentity, RemixRecord};
use crate::manifest::{FileEntry, Manifest};
use crate::pipeline::{GenerateParams, Previews, TextEncoder, UnCLIPPipeline};
use crate::Error;

pub(super) struct Inner<B: Backend> {
    pub pipeline: UnCLIPPipeline<B>,
    pub cancel: Cell<bool>,
    /// Which model this is, for the settings a picture carries.
    pub model: ModelIdentity,
}

/// The pipeline on the backend the page chose.
pub(super) enum Loaded {
    Cpu(Rc<Inner<Cpu>>),
    WebGpu(Rc<Inner<WebGpu>>),
}

/// Runs `$body` with `$inner: &Rc<Inner<B>>` for whichever backend the engine runs on.
macro_rules! on_backend {
    ($engine:expr, $inner:ident => $body:expr) => {
        match &$engine.loaded {
            $crate::web::engine::Loaded::Cpu($inner) => $body,
            $crate::web::engine::Loaded::WebGpu($inner) => $body,
        }
    };
}
pub(super) use on_backend;

/// A loaded model on the CPU (wasm simd128) or on WebGPU.
#[wasm_bindgen]
pub struct Engine {
    pub(super) loaded: Loaded,
}

fn inner<B: Backend>(be: &B, manifest: Manifest, model: ModelIdentity, files: &Map) -> crate::Result<Rc<Inner<B>>> {
    let open = |f: &FileEntry| -> crate::Result<Vec<u8>> {
        let bytes = files.get(&JsValue::from_str(&f.file));
        if bytes.is_undefined() {
            return Err(Error::Weights(format!("{} was not downloaded", f.file)));
        }
        let bytes = Uint8Array::new(&bytes).to_vec();
        f.verify(&bytes)?;
        Ok(bytes)
    };
    let pipeline = UnCLIPPipeline::load(be, manifest, open)?;
    Ok(Rc::new(Inner { pipeline, cancel: Cell::new(false), model }))
}

#[wasm_bindgen]
impl Engine {
    /// `files`: Map from file name to its verified bytes (Uint8Array); `backend`: "cpu" or "webgpu"
    /// (the worker decides, see worker.js `chooseBackend`).
    pub async fn load(manifest_json: String, files: Map, backend: String) -> JsResult<Engine> {
        let load = async {
            let manifest = Manifest::from_json(manifest_json.as_bytes())?;
            let model = ModelIdentity::of(&manifest, manifest_json.as_bytes());
            Ok(match backend.as_str() {
                "cpu" => Loaded::Cpu(inner(&Cpu, manifest, model, &files)?),
                "webgpu" => Loaded::WebGpu(inner(&WebGpu::new().await?, manifest, model, &files)?),
                other => return Err(Error::Settings(format!("unknown backend `{other}` (expected cpu or webgpu)"))),
            })
        };
        Ok(Engine { loaded: load.await.map_err(js_error)? })
    }

    /// {backend, adapter?, width, height, maxTokens, threads, stages: [{stage, what, input, output}]}: the tensor
    /// shapes of one generation under guidance (N = 2: [uncond; cond]), for the teaching page's overview.
    pub fn info(&self) -> JsResult<JsValue> {
        match &self.loaded {
            Loaded::Cpu(i) => to_js(&EngineInfo::of(&i.pipeline, None)),
            Loaded::WebGpu(i) => to_js(&EngineInfo::of(&i.pipeline, Some(i.pipeline.backend().adapter()))),
        }
    }

    /// Stops a running `generate` before its next step.
    pub fn cancel(&self) {
        on_backend!(self, i => i.cancel.set(true))
    }

    /// {name, version, sha256}: the loaded model's identity (model.json's SHA-256), as a picture's settings name it.
    #[wasm_bindgen(js_name = modelIdentity)]
    pub fn model_identity(&self) -> JsResult<JsValue> {
        on_backend!(self, i => to_js(&i.model))
    }

    /// params: {prompt, seed, prior_steps, …} (missing fields take diffusers' defaults).
    /// `on_event` receives {type: "stage_start"|"step"|"stage_end"|"warning", …} ([`super::events`]); steps of
    /// the decoder and super-res carry `xt` and `x0` as RGBA. Resolves to {rgba, width, height, image_embedding,
    /// png}: png is the picture as a PNG file carrying its settings (docs/formats.md, "Pictures"); `remix` (a remix
    /// frame: {op, frame, frames, inputs, invert, max_theta?}, `RemixRecord`) goes into them, undefined for a generation.
    /// `previews`: {kinds, every} ([`crate::pipeline::Previews`]), the step tensors to read back; undefined: all.
    pub fn generate(&self, params: JsValue, on_event: Function, remix: JsValue, previews: JsValue) -> Promise {
        on_backend!(self, i => future_to_promise(generate_on(i.clone(), params, on_event, None, remix, previews)))
    }
}

/// The shapes of one generation's tensors, for the teaching page.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineInfo<'a> {
    backend: &'static str,
    adapter: Option<&'a AdapterSummary>,
    width: u32,
    height: u32,
    max_tokens: u32,
    threads: u32,
    stages: [StageShapes; 7],
}

#[derive(Serialize)]
struct StageShapes {
    stage: &'static str,
    what: &'static str,
    input: String,
    output: String,
}

impl<'a> EngineInfo<'a> {
    fn of<B: Backend>(p: &UnCLIPPipeline<B>, adapter: Option<&'a AdapterSummary>) -> Self {
        let (h, w) = p.output_size();
        let l = p.tokenizer.max_length();
        let (te, th) = match &p.text_encoder {
            TextEncoder::Clip(m) => (m.config.projection_dim, m.config.hidden_size),
            TextEncoder::Bert(m) => (m.config.hidden_size, m.config.hidden_size),
        };
        let e = p.embedding_dim();
        let tp = &p.text_proj.config;
        let (dc, sr) = (&p.decoder.config, &p.super_res_first.config);
        let (c, s, s2) = (dc.in_channels, dc.sample_size, sr.sample_size);
        let shape = |d: &[usize]| format!("({})", d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
        let row = |stage, what, input, output| StageShapes { stage, what, input, output };
        let text_proj_out = format!(
            "{} + {}",
            shape(&[2, tp.clip_extra_context_tokens + l, tp.cross_attention_dim]),
            shape(&[2, tp.time_embed_dim])
        );
        EngineInfo {
            backend: p.backend().name(),
            adapter,
            width: w as u32,
            height: h as u32,
            max_tokens: l as u32,
            threads: threads() as u32,
            stages: [
                row("text", "text encoder", shape(&[2, l]), format!("{} + {}", shape(&[2, te]), shape(&[2, l, th]))),
                row("prior", "prior (per step)", shape(&[2, e]), shape(&[2, e])),
                row("image_embedding", "image embedding", shape(&[1, e]), shape(&[1, e])),
                row("text_proj", "text_proj", shape(&[2, e]), text_proj_out),
                row("decoder", "decoder (per step)", shape(&[2, c, s, s]), shape(&[2, dc.out_channels, s, s])),
                row("upsample", "bicubic upsample", shape(&[1, c, s, s]), shape(&[1, c, s2, s2])),
                row(
                    "super_res",
                    "super-res (per step)",
                    shape(&[1, sr.in_channels, s2, s2]),
                    shape(&[1, sr.out_channels, s2, s2]),
                ),
            ],
        }
    }
}

/// Threads the CPU backend uses: the rayon pool's size in the shared-memory module, 1 in the single-threaded one.
fn threads() -> usize {
    if cfg!(feature = "threads") {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// A run's `previews` argument: undefined = every preview at every step.
pub(super) fn previews_of(previews: JsValue) -> JsResult<Previews> {
    Ok(from_js::<Option<Previews>>(previews)?.unwrap_or_default())
}

/// What a generation resolves to.
#[derive(Serialize)]
struct Generated {
    #[serde(with = "serde_wasm_bindgen::preserve")]
    rgba: Uint8ClampedArray,
    width: u32,
    height: u32,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    image_embedding: Float32Array,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    png: Uint8Array,
}

/// A generation, or with `edit` an img2img / inpainting ([`crate::edit`]), reporting to `on_event`.
pub(super) async fn generate_on<B: Backend>(
    inner: Rc<Inner<B>>,
    params: JsValue,
    on_event: Function,
    edit: Option<crate::Result<EditParams>>,
    remix: JsValue,
    previews: JsValue,
) -> JsResult<JsValue> {
    let params: GenerateParams = from_js(params)?;
    let remix: Option<RemixRecord> = from_js(remix)?;
    let edit = edit.transpose().map_err(js_error)?;
    inner.cancel.set(false);
    let mut sink = JsObserver::new(on_event, &inner.cancel, previews_of(previews)?);
    if params.image_embedding.is_none() {
        sink.prior = PriorView::of(&inner.pipeline).await.map_err(js_error)?;
    }
    let result = match &edit {
        Some(e) => inner.pipeline.edit(&params, e, &mut sink).await,
        None => inner.pipeline.generate(&params, &mut sink).await,
    };
    let out = sink.outcome(result)?;
    let rgba = out.to_rgba8();
    let record =
        ImageSettings { remix, ..ImageSettings::new(&params, edit.as_ref(), &inner.model, out.width, out.height) };
    let png = crate::png_file::encode_png(&rgba, out.width, out.height, &record).map_err(js_error)?;
    to_js(&Generated {
        png: Uint8Array::from(&png[..]),
        rgba: Uint8ClampedArray::from(&rgba[..]),
        width: out.width as u32,
        height: out.height as u32,
        image_embedding: Float32Array::from(&out.image_embedding[..]),
    })
}
