// The types of unclip.js (README, "Use it in your own page"). The settings, stage names and error codes come from
// js/protocol.d.ts, whose declarations tests/contract.rs writes from the engine's Rust definitions.
import type { PARAMS, PREVIEWS, ErrorCode, Sampler, Stage } from "./js/protocol.js";

export { ERROR_CODES, GENERATE_STAGES, LIMITS, PARAMS, PREVIEWS, STAGES } from "./js/protocol.js";
export type { ErrorCode, Sampler, Stage } from "./js/protocol.js";

type Widen<T> = T extends string ? (T extends Sampler ? Sampler : string) : T extends number ? number : T;

/** A generation's settings: protocol.js's PARAMS, each optional (missing ones take the model's recommended ones,
 * then the engine's defaults). */
export type Settings = { -readonly [K in keyof typeof PARAMS]?: Widen<(typeof PARAMS)[K]> };

/** What a picture argument may be: pixels, or anything `createImageBitmap` decodes. */
export type Picture = ImageData | { rgba: Uint8Array | Uint8ClampedArray; width: number; height: number } | ImageBitmapSource;

/** The step detail a run's callbacks get (protocol.js PREVIEWS.kinds): the decoded x_t and x̂0 pictures, ε̂ (with
 * its unconditional and conditional parts under guidance), the prior's x̂0 in CLIP space. The engine reads back
 * only these, each a GPU sync on WebGPU. */
export type Preview = (typeof PREVIEWS)["kinds"][number];

export interface StepEvent {
  stage: Stage;
  /** this step, 0-based, of n */
  i: number;
  n: number;
  /** the scheduler's timestep */
  t: number;
  /** since the stage started */
  ms: number;
  /** decoder and super-res steps, with "xt" / "x0" among `previews` */
  xt?: ImageData;
  x0?: ImageData;
  width?: number;
  height?: number;
  /** CHW floats, with "eps" among `previews` */
  eps?: Float32Array;
  eps_uncond?: Float32Array;
  eps_cond?: Float32Array;
  /** prior steps, with "embedding" among `previews`: x̂0 in CLIP space and its cosine to the text embedding */
  embedding?: Float32Array;
  cosine?: number;
  /** variations: which frame of how many */
  frame?: number;
  frames?: number;
}

export interface StageEvent {
  type: "stage_start" | "stage_end";
  stage: Stage;
  steps?: number;
  ms?: number;
  /** the text stage's end, with "embedding" among `previews`: the prompt's text embedding */
  text_embedding?: Float32Array;
}

export interface RunOptions {
  onStep?: (step: StepEvent) => void;
  onStage?: (event: StageEvent) => void;
  /** the step detail the engine reads back for `onStep` (default: ["xt", "x0"]; none without `onStep`) */
  previews?: readonly Preview[];
  /** at every `every`-th step of a stage and its last (default 1: every step) */
  every?: number;
  /** aborting cancels the run before its next step; it then rejects with code "cancelled" */
  signal?: AbortSignal;
}

export interface Result {
  /** the PNG the engine wrote, its settings in two iTXt chunks (`parameters` and `unclip`) */
  blob: Blob;
  pixels: ImageData;
  /** the image embedding it decoded */
  embedding: Float32Array;
  settings: Settings & Record<string, unknown>;
  ms: number;
}

export interface LoadProgress {
  file: string;
  fileLoaded: number;
  fileBytes: number;
  loaded: number;
  total: number;
  rate: number;
  eta: number;
  cached: boolean;
  tensors?: number;
}

export interface LoadOptions {
  /** the URL of a directory holding model.json (another origin's must send CORS headers) */
  model: string | URL;
  backend?: "auto" | "webgpu" | "cpu";
  /** the CPU backend's threads (default: one per core, up to 8; more than one needs a cross-origin isolated page) */
  threads?: number;
  onProgress?: (progress: LoadProgress) => void;
  onWarning?: (message: string) => void;
}

export interface ModelInfo {
  name: string;
  version: string;
  license: string;
  attribution: { name: string; license: string; copyright?: string }[];
  recommended: Settings;
  local: boolean;
}

export interface EngineInfo {
  model: ModelInfo;
  /** as a picture's settings name the model */
  identity: { name: string; version: string; sha256: string };
  backend: "webgpu" | "cpu";
  /** why this backend, in words */
  reason: string;
  threads: number;
  /** why the CPU backend runs on one thread, in words */
  threadsWhy?: string;
  width: number;
  height: number;
  recommended: Settings;
}

export interface EditSettings extends Settings {
  /** "img2img" without a mask, "inpaint" with one (the default follows the mask) */
  edit_mode?: "img2img" | "inpaint";
}

export interface VariationOptions extends Settings {
  count?: number;
  /** from the picture's DDIM-inverted noise */
  invert?: boolean;
  eta?: number;
}

/** An engine error: `code` is one of ERROR_CODES where the engine gave one. */
export declare class UnclipError extends Error {
  readonly code?: ErrorCode;
  readonly phase?: "load" | "generate" | "remix" | "closed";
  /** the engine panicked or ran out of memory: the next call starts a new one */
  readonly crashed: boolean;
}

/** The CPU backend's threads on this page, and why one where it is one. */
export declare function threadPlan(asked?: number): { threads: number; why?: string };

/** What a load would download, read from model.json alone. */
export interface ModelProbe {
  name: string;
  version: string;
  totalBytes: number;
  /** the bytes the cache lacks (0: the model loads without the network) */
  missingBytes: number;
}

export declare class Unclip {
  /** `new Unclip(options).load()` */
  static load(options: LoadOptions): Promise<Unclip>;
  /** an engine that has downloaded nothing yet: probe() says what load() would fetch */
  constructor(options: LoadOptions);
  probe(): Promise<ModelProbe>;
  load(): Promise<this>;
  readonly info: EngineInfo;
  readonly warnings: string[];
  /** `given` over the model's recommended settings over the engine's defaults */
  settings(given?: Settings): Required<Settings>;
  generate(settings?: Settings, options?: RunOptions): Promise<Result>;
  edit(settings: EditSettings, pictures: { image: Picture; mask?: Picture | null }, options?: RunOptions): Promise<Result>;
  variations(image: Picture, options?: VariationOptions, run?: RunOptions & { onFrame?: (frame: Result, k: number, n: number) => void }): Promise<Result[]>;
  close(): void;
}

export default Unclip;
