// Model files: streamed with byte-level progress, verified (size, SHA-256, GGUF header) while they
// arrive, stored in the Cache API only when complete and verified, and read from there next time.
//
// A model comes from a source: {kind: "url", base} (a served folder, e.g. dist/models/default/), {kind: "folder",
// files: Map(name → File)} (a folder `unclip convert` wrote, picked on this device) or {kind: "local", name} (such a
// folder picked before: its verified copy in the cache). Local models are cached under LOCAL_PREFIX/<name>/, so
// each is listed, sized and deleted on its own.

import { wasm } from "./wasm.js";

export const CACHE_NAME = "unclip-models-v1";
const LOCAL_PREFIX = new URL("/__unclip-local-models__/", self.location.origin).href;
/// The most weight bytes this page loads: wasm32 memory ends at 4 GiB, and while a model loads its bytes are held
/// twice (the verified download in JS and the engine's copy in wasm memory).
export const MAX_MODEL_BYTES = 2 * 1024 ** 3;

export function localBase(name) {
  return `${LOCAL_PREFIX}${encodeURIComponent(name)}/`;
}
/// Each cached response carries its size, so the Storage panel never reads a file to size it.
const SIZE_HEADER = "x-unclip-bytes";

/// The cache key of a file pins its content: a new model version gets new keys.
function keyFor(base, entry) {
  return new URL(`${entry.file}?sha256=${entry.sha256}`, base).href;
}

export class LoadError extends Error {}

/// model.json from the network, or from the cache when offline. A new model.json is cached only by
/// `loadModel`, once every file it lists is verified and stored: until then the last complete version stays
/// the one an offline visit opens.
async function fetchManifest(base, cache) {
  const url = new URL("model.json", base).href;
  let text;
  try {
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) throw new LoadError(`model.json: the server answered ${res.status} ${res.statusText} for ${url}`);
    text = await res.text();
  } catch (e) {
    // offline or a server error: the copy from the last visit, if there is one
    const cached = await cache.match(url);
    if (!cached) throw e instanceof LoadError ? e : new LoadError(`could not fetch ${url} (${e.message}) and no copy is cached: check the connection and reload`);
    const cachedText = await cached.text();
    return { text: cachedText, manifest: wasm.parseManifest(cachedText) };
  }
  return { text, manifest: wasm.parseManifest(text) }; // throws on a bad manifest, which is then never cached
}

/// The bytes of one file as a stream: from the network, or from a picked folder.
async function open(source, base, entry) {
  if (source.kind === "folder") {
    const file = source.files.get(entry.file);
    if (!file) throw new LoadError(`the folder has no ${entry.file}, which its model.json lists: choose the whole folder \`unclip convert\` wrote`);
    return file.stream();
  }
  let res;
  try {
    res = await fetch(new URL(entry.file, base).href, { cache: "no-store" });
  } catch (e) {
    throw new LoadError(`${entry.file}: the network failed (${e.message}); check the connection and try again`);
  }
  if (!res.ok) {
    throw new LoadError(`${entry.file}: the server answered ${res.status} ${res.statusText}; try again later`);
  }
  return res.body;
}

/// Streams one file through a FileVerifier, reporting progress; returns its bytes.
async function download(stream, entry, onChunk) {
  const verifier = new wasm.FileVerifier(entry);
  const bytes = new Uint8Array(entry.bytes);
  let received = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new LoadError(`${entry.file}: the connection broke after ${received} of ${entry.bytes} bytes (${e.message}); try again`);
      }
      if (chunk.done) break;
      verifier.push(chunk.value); // throws if the file is longer than listed or not GGUF
      bytes.set(chunk.value, received);
      received += chunk.value.length;
      onChunk(received, verifier.tensors);
    }
    verifier.finish(); // size and SHA-256
  } catch (e) {
    throw e instanceof LoadError ? e : new LoadError(`${e.message}; nothing was cached — try again`);
  } finally {
    verifier.free();
  }
  return bytes;
}

/// model.json of a source, and the base its files are cached under.
async function readManifest(source, cache) {
  if (source.kind === "url") return { base: source.base, ...(await fetchManifest(source.base, cache)) };
  if (source.kind === "local") {
    const base = localBase(source.name);
    const cached = await cache.match(new URL("model.json", base).href);
    if (!cached) throw new LoadError(`the model “${source.name}” is not stored in this browser (it was deleted, or picked in another browser): open its folder again`);
    const text = await cached.text();
    return { base, text, manifest: wasm.parseManifest(text) };
  }
  const file = source.files.get("model.json");
  if (!file) throw new LoadError("the folder has no model.json: choose a folder that `unclip convert` wrote (it holds model.json and the .gguf files)");
  const text = await file.text();
  const manifest = wasm.parseManifest(text);
  return { base: localBase(manifest.name), text, manifest };
}

/// Refuses a model this page cannot hold, and says so with the numbers.
function checkFits(manifest) {
  if (manifest.totalBytes > MAX_MODEL_BYTES) {
    const mb = (b) => (b / 2 ** 20).toFixed(0);
    throw new LoadError(`${manifest.name} has ${mb(manifest.totalBytes)} MiB of weights, more than the ${mb(MAX_MODEL_BYTES)} MiB a web page can load (WebAssembly memory ends at 4096 MiB and a model's bytes are held twice while it loads): convert it with \`unclip convert --dtype q8_0\` (about a quarter of f32), or run it with the native CLI`);
  }
}

/// The Cache API's store of model files.
async function modelCache() {
  if (!("caches" in self)) throw new LoadError("this browser has no Cache API (a private window?): the model cannot be stored");
  return caches.open(CACHE_NAME);
}

/// What loading `source` would download, read from its model.json alone (no weights are fetched):
/// {name, version, totalBytes, missingBytes}, missingBytes being the bytes of the files the cache does not hold
/// (0 for a picked or stored folder, which never touches the network). The page asks before a download
/// (docs/architecture.md, "The pages").
export async function probeModel(source) {
  const cache = await modelCache();
  const { base, manifest } = await readManifest(source, cache);
  let missingBytes = 0;
  if (source.kind === "url") for (const entry of manifest.files) if (!(await cache.match(keyFor(base, entry)))) missingBytes += entry.bytes;
  return { name: manifest.name, version: manifest.version, totalBytes: manifest.totalBytes, missingBytes };
}

/// Loads every file of the model `source` names (see the top of this file). `onProgress` gets
/// {file, fileLoaded, fileBytes, loaded, total, rate, eta, cached, tensors}. Returns
/// {manifestText, manifest, files: Map(name → Uint8Array), warnings, base}.
export async function loadModel(source, onProgress) {
  const cache = await modelCache();
  const { base, text, manifest } = await readManifest(source, cache);
  checkFits(manifest);
  const files = new Map();
  const warnings = [];
  const start = performance.now();
  let loaded = 0;
  let fetchedBytes = 0;
  const added = []; // keys this load stored: a picked folder that fails leaves none of them behind
  try {
    await loadFiles();
  } catch (e) {
    if (source.kind === "folder") for (const key of added) await cache.delete(key);
    throw e;
  }
  if (!warnings.length) await commitVersion(cache, base, text, manifest);
  return { manifestText: text, manifest, files, warnings, base };

  async function loadFiles() {
    for (const entry of manifest.files) {
      const key = keyFor(base, entry);
      const hit = await cache.match(key);
      if (hit) {
        files.set(entry.file, new Uint8Array(await hit.arrayBuffer()));
        loaded += entry.bytes;
        onProgress({ file: entry.file, fileLoaded: entry.bytes, fileBytes: entry.bytes, loaded, total: manifest.totalBytes, rate: 0, eta: 0, cached: true });
        continue;
      }
      const before = loaded;
      if (source.kind === "local") throw new LoadError(`${entry.file} of “${source.name}” is no longer stored in this browser: open the model's folder again`);
      const bytes = await download(await open(source, base, entry), entry, (got, tensors) => {
        const secs = (performance.now() - start) / 1000;
        const rate = (fetchedBytes + got) / Math.max(secs, 1e-3);
        const left = manifest.totalBytes - (before + got);
        onProgress({ file: entry.file, fileLoaded: got, fileBytes: entry.bytes, loaded: before + got, total: manifest.totalBytes, rate, eta: left / Math.max(rate, 1), cached: false, tensors });
      });
      fetchedBytes += entry.bytes;
      loaded += entry.bytes;
      files.set(entry.file, bytes);
      try {
        await cache.put(key, new Response(bytes, { headers: { "content-type": "application/octet-stream", [SIZE_HEADER]: String(bytes.length) } }));
        added.push(key);
      } catch (e) {
        const { usage = 0, quota = 0 } = (await navigator.storage?.estimate?.()) ?? {};
        warnings.push(`${entry.file} could not be stored for offline use (${e.name}: storage ${(usage / 1e6).toFixed(0)} of ${(quota / 1e6).toFixed(0)} MB used); it will be downloaded again next visit — free some space to keep it`);
        await cache.delete(key);
      }
    }
  }
}

/// Every file of this model.json is verified and cached: it becomes the version an offline visit opens, and
/// the files of older versions of the same model (other sha256 keys under `base`) are evicted.
async function commitVersion(cache, base, text, manifest) {
  const url = new URL("model.json", base).href;
  try {
    await cache.put(url, new Response(text, { headers: { "content-type": "application/json", [SIZE_HEADER]: String(text.length) } }));
  } catch {
    return; // storage is full: the previous version stays whole
  }
  const current = new Set(manifest.files.map((entry) => keyFor(base, entry)));
  for (const req of await cache.keys()) {
    if (req.url.startsWith(base) && new URL(req.url).searchParams.has("sha256") && !current.has(req.url)) await cache.delete(req);
  }
}

/// Deletes one cached file (a copy that failed verification at load).
export async function forget(base, entry) {
  const cache = await caches.open(CACHE_NAME);
  await cache.delete(keyFor(base, entry));
}

/// What is cached, per model: [{base, name, version, license, local, bytes, files}], with the origin's usage.
export async function storageReport() {
  const cache = await caches.open(CACHE_NAME);
  const models = new Map(); // base → entry
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    // entries from before SIZE_HEADER: a Blob's size, which needs no copy of the bytes into this worker
    const size = Number(res?.headers.get(SIZE_HEADER) ?? (res ? (await res.blob()).size : 0));
    const base = req.url.slice(0, req.url.lastIndexOf("/") + 1);
    const m = models.get(base) ?? { base, name: decodeURIComponent(base.split("/").at(-2)), local: base.startsWith(LOCAL_PREFIX), bytes: 0, files: 0 };
    m.bytes += size;
    m.files += 1;
    if (req.url.endsWith("/model.json")) {
      try {
        const manifest = JSON.parse(await res.text());
        Object.assign(m, { name: manifest.name ?? m.name, version: manifest.version, license: manifest.license });
      } catch { /* listed by its folder name */ }
    }
    models.set(base, m);
  }
  const { usage = 0, quota = 0 } = (await navigator.storage?.estimate?.()) ?? {};
  const persisted = (await navigator.storage?.persisted?.()) ?? false;
  return { models: [...models.values()], usage, quota, persisted };
}

/// Deletes every cached file of the model at `base`.
export async function deleteModel(base) {
  const cache = await caches.open(CACHE_NAME);
  for (const req of await cache.keys()) if (req.url.startsWith(base)) await cache.delete(req);
}

export async function clearCache() {
  await caches.delete(CACHE_NAME);
}
