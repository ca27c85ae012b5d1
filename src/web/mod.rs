//! The only code that talks to JavaScript (wasm-bindgen). The worker (www/js/worker.js) streams each
//! model file through a [`FileVerifier`] (SHA-256 and the GGUF header as bytes arrive), then builds an
//! [`Engine`] from the verified bytes and calls `generate`, which reports every step to a JS callback
//! and yields to the event loop between steps so a `cancel()` message can land.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Map, Object, Promise, Reflect, Uint8Array, Uint8ClampedArray};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::backend::cpu::Cpu;
use crate::backend::webgpu::WebGpu;
use crate::backend::{Backend, Tensor};
use crate::gguf::HeaderStream;
use crate::manifest::{FileEntry, Manifest};
use crate::pipeline::{chw_to_hwc01, hwc_to_rgba8, Event, Flow, GenerateParams, Observer, Stage, UnCLIPPipeline};

/// `initThreadPool(n)` (the shared-memory module only): starts rayon's pool on n Web Workers; www/js/wasm.js calls
/// it before the first engine loads.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Builds a plain JS object from (key, value) pairs.
fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        // Reflect::set on a fresh plain object cannot fail
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// Checks one file while it downloads: byte count, SHA-256, and (for .gguf) the header, parsed as
/// soon as enough bytes have arrived.
#[wasm_bindgen]
pub struct FileVerifier {
    entry: FileEntry,
    hasher: Sha256,
    received: u64,
    /// The GGUF header as it arrives (None for files that are not GGUF).
    header: Option<HeaderStream>,
}

#[wasm_bindgen]
impl FileVerifier {
    /// `entry`: {file, bytes, sha256} from model.json.
    #[wasm_bindgen(constructor)]
    pub fn new(entry: JsValue) -> Result<FileVerifier, JsError> {
        let entry: FileEntry = serde_wasm_bindgen::from_value(entry).map_err(js_err)?;
        let gguf = entry.file.ends_with(".gguf");
        Ok(FileVerifier { entry, hasher: Sha256::new(), received: 0, header: gguf.then(HeaderStream::new) })
    }

    /// Feeds the next chunk. Errors as soon as the file is known to be wrong (too long, not GGUF).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.received += chunk.len() as u64;
        if self.received > self.entry.bytes {
            return Err(JsError::new(&format!(
                "{} is longer than the {} bytes model.json lists: the server sent another file",
                self.entry.file, self.entry.bytes
            )));
        }
        self.hasher.update(chunk);
        if let Some(header) = &mut self.header {
            header.push(chunk).map_err(|e| js_err(format!("{}: {e}", self.entry.file)))?;
        }
        Ok(())
    }

    /// Tensors in the GGUF header, once it has been parsed.
    #[wasm_bindgen(getter)]
    pub fn tensors(&self) -> Option<usize> {
        self.header.as_ref()?.header().map(|h| h.tensors.len())
    }

    /// Checks the complete file's size and hash.
    pub fn finish(&mut self) -> Result<(), JsError> {
        if self.received != self.entry.bytes {
            return Err(JsError::new(&format!(
                "{} stopped after {} of {} bytes: the download was cut off",
                self.entry.file, self.received, self.entry.bytes
            )));
        }
        if let Some(header) = &mut self.header {
            header.finish().map_err(|e| js_err(format!("{}: {e}", self.entry.file)))?;
        }
        let got: String = self.hasher.finalize_reset().iter().map(|b| format!("{b:02x}")).collect();
        if !got.eq_ignore_ascii_case(&self.entry.sha256) {
            return Err(JsError::new(&format!(
                "model.json lists {} with sha256 {}…, the download hashed to {}…",
                self.entry.file,
                &self.entry.sha256[..12.min(self.entry.sha256.len())],
                &got[..12]
            )));
        }
        Ok(())
    }
}

/// Validates model.json and returns it with the list of files to fetch.
#[wasm_bindgen(js_name = parseManifest)]
pub fn parse_manifest(json: &str) -> Result<JsValue, JsError> {
    let m = Manifest::from_json(json.as_bytes()).map_err(js_err)?;
    let files: Vec<&FileEntry> = m.files();
    let out = obj(&[
        ("name", m.name.as_str().into()),
        ("version", m.version.as_str().into()),
        ("license", m.license.as_str().into()),
        ("attribution", serde_wasm_bindgen::to_value(&m.attribution).map_err(js_err)?),
        ("files", serde_wasm_bindgen::to_value(&files).map_err(js_err)?),
        ("totalBytes", (m.total_bytes() as f64).into()),
    ]);
    Ok(out)
}

struct Inner<B: Backend> {
    pipeline: UnCLIPPipeline<B>,
    cancel: Cell<bool>,
}

/// The pipeline on the backend the page chose.
enum Loaded {
    Cpu(Rc<Inner<Cpu>>),
    WebGpu(Rc<Inner<WebGpu>>),
}

/// Runs `$body` with `$inner: &Rc<Inner<B>>` for whichever backend the engine runs on.
macro_rules! on_backend {
    ($engine:expr, $inner:ident => $body:expr) => {
        match &$engine.loaded {
            Loaded::Cpu($inner) => $body,
            Loaded::WebGpu($inner) => $body,
        }
    };
}

/// A loaded model on the CPU (wasm simd128) or on WebGPU.
#[wasm_bindgen]
pub struct Engine {
    loaded: Loaded,
}

fn inner<B: Backend>(be: &B, manifest: Manifest, files: &Map) -> crate::Result<Rc<Inner<B>>> {
    let open = |f: &FileEntry| -> crate::Result<Vec<u8>> {
        let bytes = files.get(&JsValue::from_str(&f.file));
        if bytes.is_undefined() {
            return Err(crate::Error::Weights(format!("{} was not downloaded", f.file)));
        }
        let bytes = Uint8Array::new(&bytes).to_vec();
        f.verify(&bytes)?;
        Ok(bytes)
    };
    let pipeline = UnCLIPPipeline::load(be, manifest, open)?;
    Ok(Rc::new(Inner { pipeline, cancel: Cell::new(false) }))
}

#[wasm_bindgen]
impl Engine {
    /// `files`: Map from file name to its verified bytes (Uint8Array); `backend`: "cpu" or "webgpu"
    /// (the worker decides, see worker.js `chooseBackend`).
    pub async fn load(manifest_json: String, files: Map, backend: String) -> Result<Engine, JsError> {
        let manifest = Manifest::from_json(manifest_json.as_bytes()).map_err(js_err)?;
        let loaded = match backend.as_str() {
            "cpu" => Loaded::Cpu(inner(&Cpu, manifest, &files).map_err(js_err)?),
            "webgpu" => {
                let gpu = WebGpu::new().await.map_err(js_err)?;
                Loaded::WebGpu(inner(&gpu, manifest, &files).map_err(js_err)?)
            }
            other => return Err(JsError::new(&format!("unknown backend `{other}` (expected cpu or webgpu)"))),
        };
        Ok(Engine { loaded })
    }

    /// {backend, adapter?, width, height, maxTokens, threads, stages: [{stage, what, input, output}]}: the tensor
    /// shapes of one generation under guidance (N = 2: [uncond; cond]), for the teaching page's overview.
    pub fn info(&self) -> JsValue {
        let adapter = match &self.loaded {
            Loaded::Cpu(_) => JsValue::UNDEFINED,
            Loaded::WebGpu(i) => serde_wasm_bindgen::to_value(i.pipeline.backend().adapter()).unwrap_or_default(),
        };
        on_backend!(self, i => info_of(&i.pipeline, adapter))
    }

    /// Stops a running `generate` before its next step.
    pub fn cancel(&self) {
        on_backend!(self, i => i.cancel.set(true))
    }

    /// params: {prompt, seed, prior_steps, …} (missing fields take diffusers' defaults).
    /// `on_event` receives {type: "stage_start"|"step"|"stage_end"|"warning", …}; steps of the decoder
    /// and super-res carry `xt` and `x0` as RGBA. Resolves to {rgba, width, height, image_embedding}.
    pub fn generate(&self, params: JsValue, on_event: Function) -> Promise {
        match &self.loaded {
            Loaded::Cpu(i) => future_to_promise(generate_on(i.clone(), params, on_event, None)),
            Loaded::WebGpu(i) => future_to_promise(generate_on(i.clone(), params, on_event, None)),
        }
    }
}

fn info_of<B: Backend>(p: &UnCLIPPipeline<B>, adapter: JsValue) -> JsValue {
    let (h, w) = p.output_size();
    let l = p.tokenizer.max_length();
    let (te, th) = match &p.text_encoder {
        crate::pipeline::TextEncoder::Clip(m) => (m.config.projection_dim, m.config.hidden_size),
        crate::pipeline::TextEncoder::Bert(m) => (m.config.hidden_size, m.config.hidden_size),
    };
    let e = p.embedding_dim();
    let tp = &p.text_proj.config;
    let (dc, sr) = (&p.decoder.config, &p.super_res_first.config);
    let (c, s, s2) = (dc.in_channels, dc.sample_size, sr.sample_size);
    let shape = |d: &[usize]| format!("({})", d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
    let stages = [
        ("text", "text encoder", shape(&[2, l]), format!("{} + {}", shape(&[2, te]), shape(&[2, l, th]))),
        ("prior", "prior (per step)", shape(&[2, e]), shape(&[2, e])),
        ("image_embedding", "image embedding", shape(&[1, e]), shape(&[1, e])),
        (
            "text_proj",
            "text_proj",
            shape(&[2, e]),
            format!(
                "{} + {}",
                shape(&[2, tp.clip_extra_context_tokens + l, tp.cross_attention_dim]),
                shape(&[2, tp.time_embed_dim])
            ),
        ),
        ("decoder", "decoder (per step)", shape(&[2, c, s, s]), shape(&[2, dc.out_channels, s, s])),
        ("upsample", "bicubic upsample", shape(&[1, c, s, s]), shape(&[1, c, s2, s2])),
        (
            "super_res",
            "super-res (per step)",
            shape(&[1, sr.in_channels, s2, s2]),
            shape(&[1, sr.out_channels, s2, s2]),
        ),
    ];
    let stages: js_sys::Array = stages
        .iter()
        .map(|(stage, what, input, output)| {
            obj(&[
                ("stage", (*stage).into()),
                ("what", (*what).into()),
                ("input", input.as_str().into()),
                ("output", output.as_str().into()),
            ])
        })
        .collect();
    obj(&[
        ("backend", p.backend().name().into()),
        ("adapter", adapter),
        ("width", (w as u32).into()),
        ("height", (h as u32).into()),
        ("maxTokens", (l as u32).into()),
        ("threads", (threads() as u32).into()),
        ("stages", stages.into()),
    ])
}

/// Threads the CPU backend uses: the rayon pool's size in the shared-memory module, 1 in the single-threaded one.
fn threads() -> usize {
    if cfg!(feature = "threads") {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// A generation, or with `edit` an img2img / inpainting ([`crate::edit`]), reporting to `on_event`.
async fn generate_on<B: Backend>(
    inner: Rc<Inner<B>>,
    params: JsValue,
    on_event: Function,
    edit: Option<crate::Result<crate::edit::EditParams>>,
) -> Result<JsValue, JsValue> {
    let params: GenerateParams =
        serde_wasm_bindgen::from_value(params).map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
    let edit = edit.transpose().map_err(js_err)?;
    inner.cancel.set(false);
    let mut sink = JsObserver::new(on_event, &inner.cancel);
    if params.image_embedding.is_none() {
        sink.prior = PriorView::of(&inner.pipeline, &params.prompt).await.map_err(js_err)?;
    }
    let result = match &edit {
        Some(e) => inner.pipeline.edit(&params, e, &mut sink).await,
        None => inner.pipeline.generate(&params, &mut sink).await,
    };
    let out = sink.outcome(result)?;
    let rgba = Uint8ClampedArray::from(&out.to_rgba8()[..]);
    Ok(obj(&[
        ("rgba", rgba.into()),
        ("width", (out.width as u32).into()),
        ("height", (out.height as u32).into()),
        ("image_embedding", js_sys::Float32Array::from(&out.image_embedding[..]).into()),
    ]))
}

struct JsObserver<'a> {
    on_event: Function,
    cancel: &'a Cell<bool>,
    /// Why the observer stopped the run, when it was not the user.
    error: Option<crate::Error>,
    /// For the teaching page's prior panel: what turns the prior's x̂0 into CLIP space.
    prior: Option<PriorView>,
}

/// The prior's de-normalisation (x·clip_std + clip_mean) and the prompt's text embedding z_t, on the host.
struct PriorView {
    clip_mean: Vec<f32>,
    clip_std: Vec<f32>,
    text_embedding: Vec<f32>,
}

impl PriorView {
    /// None for a model without a prior (an image-variation checkpoint).
    async fn of<B: Backend>(p: &UnCLIPPipeline<B>, prompt: &str) -> crate::Result<Option<Self>> {
        let Some(prior) = &p.prior else { return Ok(None) };
        Ok(Some(PriorView {
            clip_mean: prior.clip_mean.to_vec().await?,
            clip_std: prior.clip_std.to_vec().await?,
            text_embedding: p.text_embedding(prompt).await?,
        }))
    }

    /// (z, cos(z, z_t)) for the first row of the prior's x̂0 (normalised space); the cosine is NaN
    /// (null in JS) when z has no direction (an untrained prior's clip_std = 0 makes all-zero embeddings).
    fn embedding(&self, x0: &[f32]) -> (Vec<f32>, f32) {
        let z: Vec<f32> = x0.iter().zip(&self.clip_std).zip(&self.clip_mean).map(|((x, s), m)| x * s + m).collect();
        let cos = crate::latent::cosine_similarity(&z, &self.text_embedding).unwrap_or(f32::NAN);
        (z, cos)
    }
}

impl<'a> JsObserver<'a> {
    fn new(on_event: Function, cancel: &'a Cell<bool>) -> Self {
        JsObserver { on_event, cancel, error: None, prior: None }
    }

    /// The run's result; when a preview could not be read back (a lost GPU) and that stopped the run,
    /// the reason instead of "cancelled".
    fn outcome<T>(self, result: crate::Result<T>) -> Result<T, JsError> {
        match self.error {
            Some(e) => Err(js_err(e)),
            None => result.map_err(js_err),
        }
    }
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

async fn rgba<T: Tensor>(t: &T) -> Result<(JsValue, u32, u32), crate::Error> {
    let (c, h, w) = (t.dim(1), t.dim(2), t.dim(3));
    let data = t.to_vec().await?;
    let rgba = hwc_to_rgba8(&chw_to_hwc01(&data[..c * h * w], c, h, w));
    Ok((Uint8ClampedArray::from(&rgba[..]).into(), w as u32, h as u32))
}

impl<T: Tensor> Observer<T> for JsObserver<'_> {
    async fn on_event(&mut self, event: Event<'_, T>) -> Flow {
        let message = match event {
            Event::StageStart { stage, steps } => {
                obj(&[("type", "stage_start".into()), ("stage", stage.name().into()), ("steps", (steps as u32).into())])
            }
            Event::StageEnd { stage, elapsed_ms } => {
                obj(&[("type", "stage_end".into()), ("stage", stage.name().into()), ("ms", elapsed_ms.into())])
            }
            Event::Warning(w) => obj(&[("type", "warning".into()), ("message", w.into())]),
            Event::Step(s) => {
                let mut pairs = vec![
                    ("type", JsValue::from("step")),
                    ("stage", s.stage.name().into()),
                    ("i", (s.i as u32).into()),
                    ("n", (s.n as u32).into()),
                    ("t", (s.t as u32).into()),
                    ("ms", s.elapsed_ms.into()),
                ];
                if let (Stage::Prior, Some(view)) = (s.stage, &self.prior) {
                    // the prior's current guess of the image embedding, in CLIP space, against the text's
                    match s.pred_x0.to_vec().await.map(|x0| view.embedding(&x0[..view.clip_mean.len()])) {
                        Ok((z, cos)) => {
                            pairs.push(("embedding", js_sys::Float32Array::from(&z[..]).into()));
                            pairs.push(("text_embedding", js_sys::Float32Array::from(&view.text_embedding[..]).into()));
                            pairs.push(("cosine", cos.into()));
                        }
                        Err(e) => {
                            self.error = Some(e);
                            return Flow::Cancel;
                        }
                    }
                }
                if s.stage != Stage::Prior {
                    match (rgba(s.sample).await, rgba(s.pred_x0).await) {
                        (Ok((xt, w, h)), Ok((x0, _, _))) => {
                            pairs.extend([("xt", xt), ("x0", x0), ("width", w.into()), ("height", h.into())]);
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            self.error = Some(e);
                            return Flow::Cancel;
                        }
                    }
                    // the (guided) ε̂ and, under guidance, the two predictions it combines, as raw floats
                    let mut eps = vec![("eps", s.model_output)];
                    if let Some([u, c]) = s.guidance {
                        eps.extend([("eps_uncond", u), ("eps_cond", c)]);
                    }
                    for (name, t) in eps {
                        match t.to_vec().await {
                            Ok(v) => pairs.push((name, js_sys::Float32Array::from(&v[..]).into())),
                            Err(e) => {
                                self.error = Some(e);
                                return Flow::Cancel;
                            }
                        }
                    }
                }
                obj(&pairs)
            }
        };
        let _ = self.on_event.call1(&JsValue::NULL, &message);
        yield_to_event_loop().await;
        if self.cancel.get() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

/// The scheduler behind a teaching-page schedule: "linear" (DDPM, β from 1e-4 to 0.02) or "cosine"
/// (Improved DDPM, `squaredcos_cap_v2`, what unCLIP uses).
fn teaching_scheduler(kind: &str) -> Result<crate::schedulers::UnCLIPScheduler, JsError> {
    use crate::schedulers::{UnCLIPScheduler, UnCLIPSchedulerConfig};
    let beta_schedule = match kind {
        "linear" => "linear",
        "cosine" => "squaredcos_cap_v2",
        other => return Err(JsError::new(&format!("unknown schedule `{other}` (expected linear or cosine)"))),
    };
    let config = UnCLIPSchedulerConfig {
        beta_schedule: beta_schedule.into(),
        beta_start: 1e-4,
        beta_end: 0.02,
        ..Default::default()
    };
    UnCLIPScheduler::new(config).map_err(js_err)
}

/// β, ᾱ and log-SNR over the 1000 training steps, from the scheduler code the pipeline runs.
#[wasm_bindgen(js_name = scheduleTables)]
pub fn schedule_tables(kind: &str) -> Result<JsValue, JsError> {
    let s = teaching_scheduler(kind)?;
    let snr = crate::schedulers::log_snr(s.alphas_cumprod());
    Ok(obj(&[
        ("betas", js_sys::Float32Array::from(s.betas()).into()),
        ("alphasCumprod", js_sys::Float32Array::from(s.alphas_cumprod()).into()),
        ("logSnr", js_sys::Float32Array::from(&snr[..]).into()),
    ]))
}

/// The forward process x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (the scheduler's `add_noise`).
#[wasm_bindgen(js_name = addNoise)]
pub fn add_noise(kind: &str, t: usize, x0: &[f32], eps: &[f32]) -> Result<js_sys::Float32Array, JsError> {
    let c = teaching_scheduler(kind)?.add_noise_coefficients(t).map_err(js_err)?;
    let xt: Vec<f32> =
        x0.iter().zip(eps).map(|(x, e)| c.sqrt_alpha_prod * x + c.sqrt_one_minus_alpha_prod * e).collect();
    Ok(js_sys::Float32Array::from(&xt[..]))
}

/// cos ∠(a, b), the engine's own (`latent::cosine_similarity`), for the teaching page's nearest concepts.
#[wasm_bindgen(js_name = cosineSimilarity)]
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32, JsError> {
    crate::latent::cosine_similarity(a, b).map_err(js_err)
}

/// `torch.randn(n, generator=torch.Generator().manual_seed(seed))`: the noise ε of the forward process.
#[wasm_bindgen]
pub fn randn(seed: u64, n: usize) -> js_sys::Float32Array {
    js_sys::Float32Array::from(&crate::rng::TorchGenerator::new(seed).randn(n)[..])
}

mod bench;
mod crash;
mod edit;
mod remix;
