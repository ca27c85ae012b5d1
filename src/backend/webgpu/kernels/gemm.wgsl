// C[batch, m, n] = Σ_k A(batch, m, k) · B(batch, k, n) (+ bias), tiled 64 × 64 × 32: a workgroup of
// 16 × 16 threads stages A and B tiles in workgroup memory (16 KiB, the default limit) and each thread
// accumulates a 4 × 4 block. A deep K tile halves the barriers, which CPU implementations (lavapipe,
// SwiftShader) pay for dearly.
// Specialised by override constants:
//   MODE 0 linear:  A = x (M, K), B(k, n) = W[n, k] (weight, stored type WTYPE), bias[n]
//   MODE 1 matmul:  A = x (batch, M, K), B = rhs (batch, K, N) (f32 bits), batch strides 0 to broadcast
//   MODE 2 conv2d:  implicit GEMM per image: A = W (O, C·kh·kw) (weight), B(k, p) = the input patch
//                   element of output pixel p (im2col on the fly, zero padding), bias[o]
//   WTYPE 0 f32, 1 f16 (pairs in a u32), 2 q8_0, 3 q4_0: blocks of 32 weights as ggml, the quants first
//                   (1 byte, or a nibble, each) and the f16 block scales from word `scales_offset`.

override MODE: u32 = 0u;
override WTYPE: u32 = 0u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    has_bias: u32,
    scales_offset: u32,
    channels: u32,  // conv: input C, H, W, kernel kh × kw, padding, output width
    height: u32,
    width: u32,
    kh: u32,
    kw: u32,
    pad: u32,
    out_width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 32u;

var<workgroup> a_tile: array<f32, 2048>;  // [k][m]
var<workgroup> b_tile: array<f32, 2048>;  // [k][n]

fn block_scale(block: u32) -> f32 {
    let pair = unpack2x16float(w[p.scales_offset + block / 2u]);
    return select(pair.x, pair.y, (block & 1u) == 1u);
}

// Element e of the row-major weight, decoded from its stored type.
fn weight(e: u32) -> f32 {
    switch WTYPE {
        case 0u: {
            return bitcast<f32>(w[e]);
        }
        case 1u: {
            let pair = unpack2x16float(w[e / 2u]);
            return select(pair.x, pair.y, (e & 1u) == 1u);
        }
        case 2u: {
            let q = extractBits(bitcast<i32>(w[e / 4u]), (e & 3u) * 8u, 8u);
            return f32(q) * block_scale(e / 32u);
        }
        default: {
            let block = e / 32u;
            let j = e & 31u;
            let byte = j & 15u;
            let word = w[block * 4u + byte / 4u];
            let q = i32(extractBits(word, (byte & 3u) * 8u + select(0u, 4u, j >= 16u), 4u)) - 8;
            return f32(q) * block_scale(block);
        }
    }
}

fn load_a(batch: u32, m: u32, k: u32) -> f32 {
    if (MODE == 2u) {
        return weight(m * p.k + k);
    }
    return a[batch * p.a_batch_stride + m * p.k + k];
}

fn load_b(batch: u32, k: u32, n: u32) -> f32 {
    if (MODE == 0u) {
        return weight(n * p.k + k);
    }
    if (MODE == 1u) {
        return bitcast<f32>(w[batch * p.b_batch_stride + k * p.n + n]);
    }
    let taps = p.kh * p.kw;
    let c = k / taps;
    let tap = k % taps;
    let iy = i32(n / p.out_width + tap / p.kw) - i32(p.pad);
    let ix = i32(n % p.out_width + tap % p.kw) - i32(p.pad);
    if (iy < 0 || ix < 0 || iy >= i32(p.height) || ix >= i32(p.width)) {
        return 0.0;
    }
    return a[((batch * p.channels + c) * p.height + u32(iy)) * p.width + u32(ix)];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tiles_n = (p.n + TN - 1u) / TN;
    let tiles_m = (p.m + TM - 1u) / TM;
    let idx = wid.x + wid.y * nwg.x;
    if (idx >= tiles_n * tiles_m * p.batch) {
        return;
    }
    let n0 = (idx % tiles_n) * TN;
    let m0 = ((idx / tiles_n) % tiles_m) * TM;
    let batch = idx / (tiles_n * tiles_m);

    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var r = 0u; r < 8u; r++) {
            let e = li + r * 256u;
            // A: consecutive threads walk k (contiguous in every mode)
            let am = e / TK;
            let ak = e % TK;
            var av = 0.0;
            if (m0 + am < p.m && k0 + ak < p.k) {
                av = load_a(batch, m0 + am, k0 + ak);
            }
            a_tile[ak * TM + am] = av;
            // B: linear weights are contiguous along k, matmul and conv inputs along n
            var bk: u32;
            var bn: u32;
            if (MODE == 0u) {
                bk = e % TK;
                bn = e / TK;
            } else {
                bk = e / TN;
                bn = e % TN;
            }
            var bv = 0.0;
            if (n0 + bn < p.n && k0 + bk < p.k) {
                bv = load_b(batch, k0 + bk, n0 + bn);
            }
            b_tile[bk * TN + bn] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = a_tile[kk * TM + lid.y + 16u * i];
                br[i] = b_tile[kk * TN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += ar[i] * br[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + lid.x + 16u * j;
            if (m < p.m && n < p.n) {
                var y = acc[i * 4u + j];
                if (p.has_bias != 0u) {
                    y += bias[select(n, m, MODE == 2u)];
                }
                out[(batch * p.m + m) * p.n + n] = y;
            }
        }
    }
}
