// The remix operations (DALL·E 2's CLIP-latent features), run inside the worker on its Engine. Each op
// turns its inputs into image embeddings, asks wasm for the frames' generate params (one source of the
// seed / noise / sampler rules: src/remix.rs) and decodes them one by one with Engine.generate, so
// every frame streams the usual step events. Every message it posts carries job: "remix".

import { gpuFailed, wasm } from "./wasm.js";

const STEP_BUFFERS = ["xt", "x0", "eps", "eps_uncond", "eps_cond"];

/// An image embedding (Float32Array) for a source: {embedding} | {image: {rgba, width, height}} | {prompt}.
async function embed(engine, source, params, onEvent) {
  if (source.embedding) return new Float32Array(source.embedding);
  if (source.image) return engine.embedImage(source.image.rgba, source.image.width, source.image.height);
  if (source.prompt?.trim()) return engine.embedPrompt({ ...params, prompt: source.prompt }, onEvent);
  throw new Error("each end of a blend needs an image, a result or a prompt");
}

/// How a frame's settings record names a source (docs/formats.md, "Pictures": a remix's inputs).
function input(source) {
  if (source.embedding) return { embedding_sha256: wasm.embeddingSha256(new Float32Array(source.embedding)) };
  if (source.image) return { image_sha256: wasm.pixelsSha256(source.image.rgba) };
  return { prompt: source.prompt };
}

/// What the frames' settings records say of the op (src/image_settings.rs `RemixRecord`, less the frame).
function remixRecord(req, frames) {
  const record = { op: req.op, frames, invert: false };
  if (req.op === "variations") return { ...record, inputs: [input({ image: req.image })], invert: !!req.invert };
  if (req.op === "interpolate") return { ...record, inputs: [input(req.a), input(req.b)] };
  return { ...record, inputs: [input(req.source), { prompt: req.from }, { prompt: req.to }], max_theta: req.max_theta };
}

/// The generate params of every frame of the op.
async function plan(engine, req, onEvent) {
  const p = req.params;
  switch (req.op) {
    case "variations": {
      const { rgba, width, height } = req.image;
      const z = await engine.embedImage(rgba, width, height);
      const base = req.invert ? { ...p, ddim_eta: req.eta ?? 0.5 } : p; // η: the DDIM decode from the inverted noise
      const inverted = req.invert ? await engine.invert(rgba, width, height, z, wasm.frameParams(base, z, BigInt(p.seed)), onEvent(0, req.count), req.previews) : undefined;
      return Array.from({ length: req.count }, (_, k) => wasm.variationParams(base, z, inverted, k));
    }
    case "interpolate": {
      const a = await embed(engine, req.a, p, onEvent(0, req.frames));
      const b = await embed(engine, req.b, p, onEvent(0, req.frames));
      return wasm.interpolationFrames(a, b, req.frames).map((z) => wasm.frameParams(p, z, BigInt(p.seed)));
    }
    case "text_diff": {
      const z = await embed(engine, req.source, p, onEvent(0, req.frames));
      const [from, to] = [await engine.textEmbedding(req.from), await engine.textEmbedding(req.to)];
      return wasm.textDiffFrames(z, from, to, req.frames, req.max_theta).map((f) => wasm.frameParams(p, f, BigInt(p.seed)));
    }
    default:
      throw new Error(`unknown remix operation ${req.op}`);
  }
}

export async function runRemix(engine, req, post) {
  const send = (msg, transfer = []) => post({ ...msg, job: "remix" }, transfer);
  if (!engine) return send({ type: "error", phase: "remix", message: "the model is not loaded yet" });
  if (req.op === "caps") return send({ type: "remix_caps", imageEncoder: engine.hasImageEncoder() });
  const start = performance.now();
  const onEvent = (frame, frames) => (event) => send({ ...event, frame, frames }, STEP_BUFFERS.filter((k) => event[k]).map((k) => event[k].buffer));
  try {
    const frames = await plan(engine, req, onEvent);
    send({ type: "remix_plan", op: req.op, frames: frames.length });
    const record = remixRecord(req, frames.length);
    for (const [k, params] of frames.entries()) {
      const out = await engine.generate(params, onEvent(k, frames.length), { ...record, frame: k }, req.previews);
      send({ type: "remix_frame", k, n: frames.length, seed: params.seed, rgba: out.rgba, width: out.width, height: out.height, embedding: out.image_embedding, png: out.png }, [out.rgba.buffer, out.image_embedding.buffer, out.png.buffer]);
    }
    send({ type: "remix_done", op: req.op, ms: performance.now() - start });
  } catch (e) {
    const message = e.message ?? String(e);
    if (gpuFailed(e) && engine.info().backend === "webgpu") throw e; // the worker falls back to the CPU
    if (e.code === "cancelled") send({ type: "cancelled" });
    else send({ type: "error", phase: "remix", message });
  }
}
