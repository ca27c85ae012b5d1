// Messages between the page (app.js) and the worker (worker.js). Every message is {type, ...}.
//
// page → worker
//   {type: "load", source, backend}          fetch (or read from the cache) and build the model on
//                                            backend "auto" | "webgpu" | "cpu" (again to switch); source:
//                                            {kind: "url", base} | {kind: "folder", files: Map(name → File)} |
//                                            {kind: "local", name} (weights.js); {modelUrl} = a url source
//   {type: "generate", params, edit?}        params as in the URL: prompt, seed, prior_steps, …, edit_mode,
//                                            strength, resample; edit: {image: {rgba, width, height}, mask:
//                                            {rgba, width, height} | null} (img2img without a mask, inpainting with)
//   {type: "cancel"}                         stop before the next step
//   {type: "storage"}                        report what is cached
//   {type: "clear_cache"}                    delete every cached model file
//   {type: "delete_model", base}             delete one cached model (a `storage` entry's base)
//   {type: "crash_drill", kind}              crash the engine on purpose ("panic" | "oom"): the browser tests
//
// worker → page
//   {type: "load_progress", file, fileLoaded, fileBytes, loaded, total, rate, eta, cached, tensors}
//   {type: "ready", model: {name, version, license, attribution, local}, info: {backend, adapter?, width, height, …}, reason}
//   {type: "stage_start", stage, steps} / {type: "stage_end", stage, ms}
//   {type: "step", stage, i, n, t, ms, xt?, x0?, width?, height?, eps?, eps_uncond?, eps_cond?}
//                                            xt/x0: RGBA Uint8ClampedArray; eps*: CHW Float32Array (ε̂, and
//                                            under guidance the unconditional and conditional ε̂)
//   {type: "warning", message}
//   {type: "done", rgba, width, height, embedding, ms}   embedding: the image embedding (Float32Array)
//   {type: "cancelled"}
//   {type: "error", phase: "load" | "generate", message, crashed?}   crashed: the wasm engine panicked or ran
//                                            out of memory; the page replaces the worker and loads the model again
//   {type: "storage", models: [{base, name, version?, license?, local, bytes, files}], usage, quota, persisted}

// Remix (remix.js ↔ remix-worker.js); every worker → page message of a remix carries job: "remix"
//   page → worker {type: "remix", op: "caps"}                          → {type: "remix_caps", imageEncoder}
//                 {type: "remix", op: "variations", params, image: {rgba, width, height}, count, invert, eta?}
//                 {type: "remix", op: "interpolate", params, a, b, frames}     a, b: {embedding} | {image} | {prompt}
//                 {type: "remix", op: "text_diff", params, source, from, to, frames, max_theta}
//   worker → page stage_start / step / stage_end / warning as above, plus {frame, frames} (step stage may be
//                 "inversion"); {type: "remix_plan", op, frames}; {type: "remix_frame", k, n, seed, rgba, width,
//                 height, embedding}; {type: "remix_done", op, ms}; {type: "cancelled"}; {type: "error", phase: "remix", message}

export const STAGES = ["text", "prior", "decoder", "super_res"];

export const DEFAULTS = {
  prompt: "",
  negative_prompt: "",
  seed: 0,
  prior_steps: 25,
  decoder_steps: 25,
  sr_steps: 7,
  prior_guidance: 4.0,
  prior_best_of: 1,
  decoder_guidance: 8.0,
  edit_mode: "off",
  strength: 0.6,
  resample: 1,
  backend: "auto",
};
