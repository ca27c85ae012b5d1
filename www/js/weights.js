// Model files: streamed with byte-level progress, verified (size, SHA-256, GGUF header) while they
// arrive, stored in the Cache API only when complete and verified, and read from there next time.

import { FileVerifier, parseManifest } from "../pkg/unclip.js";

export const CACHE_NAME = "unclip-models-v1";
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
    return { text: cachedText, manifest: parseManifest(cachedText) };
  }
  return { text, manifest: parseManifest(text) }; // throws on a bad manifest, which is then never cached
}

/// Streams one file through a FileVerifier, reporting progress; returns its bytes.
async function download(url, entry, onChunk) {
  let res;
  try {
    res = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new LoadError(`${entry.file}: the network failed (${e.message}); check the connection and try again`);
  }
  if (!res.ok) {
    throw new LoadError(`${entry.file}: the server answered ${res.status} ${res.statusText}; try again later`);
  }
  const verifier = new FileVerifier(entry);
  const bytes = new Uint8Array(entry.bytes);
  let received = 0;
  const reader = res.body.getReader();
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

/// Loads every file of the model at `base` (a URL ending in "/"). `onProgress` gets
/// {file, fileLoaded, fileBytes, loaded, total, rate, eta, cached, tensors}. Returns
/// {manifestText, manifest, files: Map(name → Uint8Array), warnings}.
export async function loadModel(base, onProgress) {
  if (!("caches" in self)) throw new LoadError("this browser has no Cache API (a private window?): the model cannot be stored");
  const cache = await caches.open(CACHE_NAME);
  const { text, manifest } = await fetchManifest(base, cache);
  const files = new Map();
  const warnings = [];
  const start = performance.now();
  let loaded = 0;
  let fetchedBytes = 0;
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
    const bytes = await download(new URL(entry.file, base).href, entry, (got, tensors) => {
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
    } catch (e) {
      const { usage = 0, quota = 0 } = (await navigator.storage?.estimate?.()) ?? {};
      warnings.push(`${entry.file} could not be stored for offline use (${e.name}: storage ${(usage / 1e6).toFixed(0)} of ${(quota / 1e6).toFixed(0)} MB used); it will be downloaded again next visit — free some space to keep it`);
      await cache.delete(key);
    }
  }
  if (!warnings.length) await commitVersion(cache, base, text, manifest);
  return { manifestText: text, manifest, files, warnings };
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

export async function storageReport() {
  const cache = await caches.open(CACHE_NAME);
  const entries = [];
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    // entries from before SIZE_HEADER: a Blob's size, which needs no copy of the bytes into this worker
    const size = Number(res?.headers.get(SIZE_HEADER) ?? (res ? (await res.blob()).size : 0));
    entries.push({ name: new URL(req.url).pathname.split("/").slice(-2).join("/"), bytes: size });
  }
  const { usage = 0, quota = 0 } = (await navigator.storage?.estimate?.()) ?? {};
  const persisted = (await navigator.storage?.persisted?.()) ?? false;
  return { entries, usage, quota, persisted };
}

export async function clearCache() {
  await caches.delete(CACHE_NAME);
}
