// PNG files as the tests read them, without the engine: the chunks, the iTXt texts, a chunk rewritten with its CRC,
// and the RGBA8 frames of a PNG or an APNG (zlib from node; the five row filters undone here).
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";

/// The PNG's chunks in order: [{type, data}].
export function chunks(bytes) {
  const b = Buffer.from(bytes);
  assert.deepEqual([...b.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "a PNG signature");
  const out = [];
  for (let at = 8; at < b.length; at += 12 + b.readUInt32BE(at)) {
    out.push({ type: b.toString("latin1", at + 4, at + 8), data: b.subarray(at + 8, at + 8 + b.readUInt32BE(at)) });
  }
  return out;
}

/// keyword → text of the PNG's uncompressed iTXt chunks.
export function itxt(bytes) {
  const texts = {};
  for (const { type, data } of chunks(bytes)) {
    if (type !== "iTXt") continue;
    const k = data.indexOf(0);
    assert.equal(data[k + 1], 0, "written uncompressed");
    const afterLanguage = data.indexOf(0, k + 3) + 1;
    texts[data.toString("latin1", 0, k)] = data.subarray(data.indexOf(0, afterLanguage) + 1).toString("utf8");
  }
  return texts;
}

const CRC = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
function crc32(buf) { let c = ~0; for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8); return ~c >>> 0; }

/// The PNG with its `unclip` chunk's text replaced by `text` (a valid chunk, CRC and all).
export function withSettings(bytes, text) {
  const parts = [Buffer.from(bytes.subarray(0, 8))];
  for (const { type, data } of chunks(bytes)) {
    const body = type === "iTXt" && data.toString("latin1", 0, 7) === "unclip\0" ? Buffer.concat([Buffer.from("unclip\0\0\0\0\0", "latin1"), Buffer.from(text)]) : data;
    const head = Buffer.alloc(8); head.writeUInt32BE(body.length); head.write(type, 4, "latin1");
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])));
    parts.push(head, body, crc);
  }
  return Buffer.concat(parts);
}

/// Zlib data of `height` filtered rows of `width` RGBA8 pixels → the pixels.
function unfilter(zlib, width, height) {
  const raw = inflateSync(zlib), stride = width * 4, out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)], row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? out[y * stride + x - 4] : 0, b = y ? out[(y - 1) * stride + x] : 0, c = x >= 4 && y ? out[(y - 1) * stride + x - 4] : 0;
      const p = a + b - c, [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      const predictor = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      out[y * stride + x] = (row[x] + predictor) & 0xff;
    }
  }
  return out;
}

/// {width, height, frames: [RGBA8 Buffer], delays: [ms]} of an RGBA8 PNG (one frame) or APNG (every frame, each the
/// whole picture, as src/png_file.rs writes them).
export function decodePng(bytes) {
  const list = chunks(bytes);
  const ihdr = list[0].data;
  const [width, height] = [ihdr.readUInt32BE(0), ihdr.readUInt32BE(4)];
  assert.deepEqual([ihdr[8], ihdr[9], ihdr[12]], [8, 6, 0], "RGBA8, not interlaced");
  const frames = [], delays = [];
  let data = [];
  const flush = () => { if (data.length) frames.push(unfilter(Buffer.concat(data), width, height)); data = []; };
  for (const { type, data: d } of list) {
    if (type === "fcTL") {
      flush();
      assert.deepEqual([d.readUInt32BE(4), d.readUInt32BE(8), d.readUInt32BE(12), d.readUInt32BE(16)], [width, height, 0, 0], "a whole-picture frame");
      delays.push((1000 * d.readUInt16BE(20)) / (d.readUInt16BE(22) || 100));
    } else if (type === "IDAT") data.push(d);
    else if (type === "fdAT") data.push(d.subarray(4));
  }
  flush();
  return { width, height, frames, delays };
}
