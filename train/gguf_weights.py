"""Reads the weights of a component GGUF written by `unclip convert` (docs/formats.md "GGUF files") back into
PyTorch tensors, so that training can resume from a shipped model (state.py `link`, trainer.py `load`).

GGUF v3, little-endian: magic, version, tensor count, metadata count; metadata key/value pairs; per tensor its name,
dims (ggml order, innermost first), type and offset; then the data at `general.alignment` (32). Types: f32, f16,
q8_0 (f16 scale + 32 x i8) and q4_0 (f16 scale + 16 bytes of nibbles, low nibbles first: values 0-15 minus 8).
Quantized blocks run along rows; a conv kernel (out, in, kh, kw) is stored as the (out, in*kh*kw) matrix, so the
tensor is reshaped to its PyTorch shape after dequantizing.
"""
import struct

import numpy as np
import torch

import q8

F32, F16, Q4_0, Q8_0 = 0, 1, 2, 8
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def value(self, kind):
        if kind == 8:
            return self.string()
        if kind == 9:
            inner, n = self.take("<I"), self.take("<Q")
            return [self.value(inner) for _ in range(n)]
        return self.take(SCALAR[kind])


def read(path):
    """{state-dict key: f32 tensor in PyTorch order} and the metadata dict of a component GGUF."""
    try:
        return parse(path, open(path, "rb").read())
    except (struct.error, ValueError, UnicodeDecodeError) as e:  # a header or data that runs past the end
        raise SystemExit(f"{path} is not a complete GGUF file ({e}): convert the model again with `unclip convert`")


def parse(path, data):
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise SystemExit(f"{path} is not a GGUF file (no GGUF magic)")
    r.pos = 4
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    if version != 3:
        raise SystemExit(f"{path}: GGUF version {version}, expected 3")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        infos.append((name, dims[::-1], r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    out = {}
    for name, shape, kind, offset in infos:
        n = int(np.prod(shape)) if shape else 1
        at = base + offset
        if kind == F32:
            x = np.frombuffer(data, np.float32, n, at)
        elif kind == F16:
            x = np.frombuffer(data, np.float16, n, at).astype(np.float32)
        elif kind in (Q8_0, Q4_0):
            size = 34 if kind == Q8_0 else 18
            blocks = np.frombuffer(data, np.uint8, n // 32 * size, at).reshape(-1, size)
            scale = torch.from_numpy(blocks[:, :2].copy().view(np.float16).reshape(-1))
            if kind == Q8_0:
                q = torch.from_numpy(blocks[:, 2:].copy().view(np.int8))
            else:
                packed = blocks[:, 2:]
                q = torch.from_numpy(np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int8) - 8)
            x = q8.decode(q, scale, [n]).numpy()  # value = q * scale, as the committed state's blocks
        else:
            raise SystemExit(f"{path}: tensor {name} has GGUF type {kind}, which this reader does not know")
        out[name] = torch.from_numpy(np.array(x, np.float32).reshape(shape))
    return out, meta
