// Messages between the page (app.js) and the worker (worker.js). Every message is {type, ...}.
//
// page → worker
//   {type: "load", modelUrl}                 fetch (or read from the cache) and build the model
//   {type: "generate", params}               params as in the URL: prompt, seed, prior_steps, …
//   {type: "cancel"}                         stop before the next step
//   {type: "storage"}                        report what is cached
//   {type: "clear_cache"}                    delete every cached model file
//
// worker → page
//   {type: "load_progress", file, fileLoaded, fileBytes, loaded, total, rate, eta, cached, tensors}
//   {type: "ready", model: {name, version, license, attribution}, info: {backend, width, height}, reason}
//   {type: "stage_start", stage, steps} / {type: "stage_end", stage, ms}
//   {type: "step", stage, i, n, t, ms, xt?, x0?, width?, height?, eps?, eps_uncond?, eps_cond?}
//                                            xt/x0: RGBA Uint8ClampedArray; eps*: CHW Float32Array (ε̂, and
//                                            under guidance the unconditional and conditional ε̂)
//   {type: "warning", message}
//   {type: "done", rgba, width, height, embedding, ms}   embedding: the image embedding (Float32Array)
//   {type: "cancelled"}
//   {type: "error", phase: "load" | "generate", message}
//   {type: "storage", entries: [{name, bytes}], usage, quota, persisted}

export const STAGES = ["text", "prior", "decoder", "super_res"];

export const DEFAULTS = {
  prompt: "",
  seed: 0,
  prior_steps: 25,
  decoder_steps: 25,
  sr_steps: 7,
  prior_guidance: 4.0,
  decoder_guidance: 8.0,
  backend: "auto",
};
