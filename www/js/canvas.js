// Drawing tensors on canvases, shared by the generate page and the teaching panels.

/// RGBA bytes onto a canvas of their size.
export function paintRgba(canvas, rgba, w, h) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), w, h), 0, 0);
}

/// A data: URL of PNG bytes (the engine's file, its settings in it: History keeps it, Download saves these bytes).
export function pngDataUrl(png) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob([png], { type: "image/png" }));
  });
}

/// A CHW float image (3 channels) as RGBA: v·scale + offset in [0, 1], clipped. The defaults show
/// images in [-1, 1]; `scale = 1/6` shows noise with ±3σ spanning black to white.
export function chwToRgba(chw, w, h, scale = 0.5, offset = 0.5) {
  const n = w * h;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round((chw[c * n + p] * scale + offset) * 255);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

/// Scale that shows ε̂ (~N(0, 1)) with ±3 spanning the grey range.
export const NOISE_SCALE = 1 / 6;

/// A picture (a File, a Blob or an <img>) drawn on `canvas`, its longest side scaled down to `maxSide`: resolves to
/// {rgba, width, height} (the canvas' pixels), or null when the browser cannot decode it.
export async function drawPicture(source, canvas, maxSide) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(source);
  } catch {
    return null;
  }
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const [w, h] = [Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale))];
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  g.drawImage(bitmap, 0, 0, w, h);
  return { rgba: new Uint8Array(g.getImageData(0, 0, w, h).data.buffer), width: w, height: h };
}

/// Saves `bytes` as the file `name` (PNG), as a download link would.
export function savePng(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  const a = document.createElement("a");
  a.href = url; a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
