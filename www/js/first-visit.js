// A first visit says the model's size first (docs/architecture.md, "The pages"): both pages ask the worker what a
// load would download (a `probe`: model.json alone, no weights) and start it without a click only where that costs
// the person nothing worth asking about.

import { t } from "./i18n.js";

/// A download this small starts at once, so the first Generate answers at once: it is about what the first visit
/// already costs (the service worker stores both wasm modules, ~9 MB). The bundled unclip-emoji (32.6 MB) is over it.
export const PRELOAD_BYTES = 16e6;

/// The browser asks pages to save data (a metered link: `navigator.connection.saveData`).
export const saveData = () => navigator.connection?.saveData === true;

/// Whether the load a probe describes starts without a click: when it downloads nothing (the model is cached),
/// or, where the browser does not ask to save data, when the download is small or `asked` (a link with autorun=1).
export function loadsAtOnce(probe, asked = false) {
  return probe.missingBytes === 0 || (!saveData() && (asked || probe.missingBytes <= PRELOAD_BYTES));
}

/// The line that offers the download: the model, its size, and that the first run fetches it.
export function downloadOffer(probe) {
  return t("gen.offer", `${probe.name} ${probe.version}`, (probe.missingBytes / 1e6).toFixed(1), saveData());
}
