// Messages between the page (app.js) and the worker (worker.js). Every message is {type, ...}.
//
// page → worker
//   {type: "load", source, backend}          fetch (or read from the cache) and build the model on
//                                            backend "auto" | "webgpu" | "cpu" (again to switch); source:
//                                            {kind: "url", base} | {kind: "folder", files: Map(name → File)} |
//                                            {kind: "local", name} (weights.js); {modelUrl} = a url source
//   {type: "probe", id, source}              what a load of source would download, from its model.json alone
//                                            (no weights fetched): the page asks before a download (first-visit.js)
//   {type: "generate", params, edit?, job?}  params as in the URL: prompt, seed, prior_steps, …, edit_mode,
//                                            strength, resample; edit: {image: {rgba, width, height}, mask:
//                                            {rgba, width, height} | null} (img2img without a mask, inpainting with);
//                                            job: "grid" for an X/Y grid's cell (every answer carries it);
//                                            previews: {kinds, every} the step tensors to read back (PREVIEWS, the
//                                            default: every kind at every step; docs/architecture.md "Step previews")
//   {type: "grid_cells", job, params, x, y}  an X/Y grid's cells: x, y: {setting, values} (GRID.settings)
//   {type: "grid_png", job, params, grid, rgba, width, height}   the labelled grid as a PNG; grid: {x, y, left,
//                                            top, cell_width, cell_height} (docs/formats.md "Pictures")
//   {type: "steps_png", id, run_png, frames, rgba, sheet}   a run's steps as an APNG (or with sheet a contact
//                                            sheet): frames {stage, image: "xt" | "x0", t: [..], frame_width,
//                                            frame_height}, rgba every frame in turn, run_png the run's PNG
//   {type: "cancel"}                         stop before the next step
//   {type: "read_png", bytes, file}          the settings a picture carries (bytes: the file's ArrayBuffer)
//   {type: "storage"}                        report what is cached
//   {type: "clear_cache"}                    delete every cached model file
//   {type: "delete_model", base}             delete one cached model (a `storage` entry's base)
//   {type: "crash_drill", kind}              crash the engine on purpose ("panic" | "oom"): the browser tests
//
// worker → page
//   {type: "probe", id, name, version, totalBytes, missingBytes | error}   missingBytes: what the cache lacks
//   {type: "load_progress", file, fileLoaded, fileBytes, loaded, total, rate, eta, cached, tensors}
//   {type: "ready", model: {name, version, license, attribution, local}, identity: {name, version, sha256},
//    info: {backend, adapter?, width, height, …}, reason}     identity: as a picture's settings name the model
//   {type: "stage_start", stage, steps} / {type: "stage_end", stage, ms, text_embedding?}   the text stage's end:
//                                            the prompt's text embedding (Float32Array), where "embedding" is
//                                            among the previews and the model has a prior
//   {type: "step", stage, i, n, t, ms, embedding?, cosine?, xt?, x0?, width?, height?, eps?, eps_uncond?,
//    eps_cond?}                              only the previews the run asked for, at the steps it asked for:
//                                            prior steps: embedding (x̂0 in CLIP space) and its cosine to the text
//                                            embedding; other steps: xt/x0: RGBA Uint8ClampedArray; eps*: CHW
//                                            Float32Array (ε̂, and under guidance the unconditional and conditional ε̂)
//   {type: "warning", message}
//   {type: "done", rgba, width, height, embedding, png, ms}   embedding: the image embedding (Float32Array);
//                                            png: the picture as a PNG file with its settings (Uint8Array)
//   {type: "png_settings", file, settings | null, error?}   settings: the record of docs/formats.md "Pictures"
//                                            (null: the PNG carries none); error: one sentence
//   {type: "grid_cells", job, cells} / {type: "grid_png", job, png}   cells: each cell's params, row by row
//   {type: "steps_png", id, png | error}
//   {type: "cancelled"}
//   {type: "error", phase: "load" | "generate", message, code?, crashed?}   code: the engine's error code
//                                            (ERROR_CODES); crashed: the wasm engine panicked or ran out of
//                                            memory; the page replaces the worker and loads the model again
//   {type: "storage", models: [{base, name, version?, license?, local, bytes, files}], usage, quota, persisted}

// Remix (remix.js ↔ remix-worker.js); every worker → page message of a remix carries job: "remix"
//   page → worker {type: "remix", op: "caps"}                          → {type: "remix_caps", imageEncoder}
//                 {type: "remix", op: "variations", params, image: {rgba, width, height}, count, invert, eta?}
//                 {type: "remix", op: "interpolate", params, a, b, frames}     a, b: {embedding} | {image} | {prompt}
//                 {type: "remix", op: "text_diff", params, source, from, to, frames, max_theta}
//                 each may carry previews, as generate's (for its inversion and its frames)
//   worker → page stage_start / step / stage_end / warning as above, plus {frame, frames} (step stage may be
//                 "inversion"); {type: "remix_plan", op, frames}; {type: "remix_frame", k, n, seed, rgba, width,
//                 height, embedding, png}; {type: "remix_done", op, ms}; {type: "cancelled"}; {type: "error", phase: "remix", message}

// BEGIN generated by tests/contract.rs from the engine's Rust definitions: do not edit here; change
// the Rust and run `UPDATE_CONTRACT=1 cargo test --test contract`.
// pipeline::Stage::ALL: every stage a run reports, in order
export const STAGES = ["text","prior","inversion","decoder","super_res"];
// pipeline::Stage::GENERATE: the stages of a generation
export const GENERATE_STAGES = ["text","prior","decoder","super_res"];
// GenerateParams::default(), with the edit's strength (img2img) and resample
export const PARAMS = {"ddim_eta":0.0,"decoder_guidance":8.0,"decoder_steps":25,"negative_prompt":"","prior_best_of":1,"prior_guidance":4.0,"prior_steps":25,"prompt":"","resample":1,"sampler":"ddpm","seed":0,"sr_steps":7,"strength":0.6};
// pipeline::MAX_STEPS, MAX_GUIDANCE, MAX_BEST_OF; edit::MAX_RESAMPLE
export const LIMITS = {"max_best_of":16,"max_guidance":100.0,"max_resample":20,"max_steps":1000};
// Error::CODES: an engine error's `code`
export const ERROR_CODES = ["gguf","scheduler","tensor","io","json","tokenizer","weights","model","bad_input","device","size_mismatch","hash_mismatch","cancelled"];
// image_settings::GridAxis::SETTINGS, grid::MAX_GRID_VALUES: what an X/Y grid varies, and how many values an axis takes
export const GRID = {"max_values":8,"settings":["seed","prior_guidance","decoder_guidance","prior_steps","decoder_steps","sr_steps","prior_best_of"]};
// pipeline::Previews::default(): a run's step previews, every kind (Preview::ALL) at every step
export const PREVIEWS = {"every":1,"kinds":["xt","x0","eps","embedding"]};
// END generated

// Settings as the page keeps them: the engine's (PARAMS) and the page's own, the edit mode and the backend choice.
export const DEFAULTS = { ...PARAMS, edit_mode: "off", backend: "auto" };
