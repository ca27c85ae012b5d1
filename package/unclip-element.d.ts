// The types of unclip-element.js: importing it registers <unclip-generate> and <unclip-forward>.
import type { EngineInfo, Result, Settings, StepEvent, Unclip } from "./unclip.js";

export { Unclip };

export declare class UnclipGenerate extends HTMLElement {
  /** the attributes' settings */
  readonly settings: Settings;
  /** the loaded engine's, or null */
  readonly info: EngineInfo | null;
  generate(overrides?: Settings): Promise<Result>;
}

export declare class UnclipForward extends HTMLElement {
  readonly t: number;
  readonly schedule: "cosine" | "linear";
  readonly seed: number;
}

export interface UnclipErrorDetail {
  message: string;
  code?: string;
  phase?: string;
}

declare global {
  interface HTMLElementTagNameMap {
    "unclip-generate": UnclipGenerate;
    "unclip-forward": UnclipForward;
  }
  interface HTMLElementEventMap {
    "unclip-ready": CustomEvent<EngineInfo>;
    "unclip-step": CustomEvent<StepEvent>;
    "unclip-done": CustomEvent<Result>;
    "unclip-error": CustomEvent<UnclipErrorDetail>;
    "unclip-draw": CustomEvent<{ t: number; schedule: "cosine" | "linear"; alphaBar: number }>;
  }
}
