// C[batch, m, n] = Σ_k A(batch, m, k) · B(batch, k, n) (+ bias), tiled 64 × TN × 32: a workgroup of 8 × 8
// threads stages A and B tiles in workgroup memory (16 KiB, the default limit) as vec4s and each thread
// accumulates an 8 × 8 block in sixteen vec4 registers, written out by hand: a dynamically indexed
// accumulator array becomes per-invocation memory on CPU implementations (SwiftShader, lavapipe), where it
// cost more than the arithmetic. A deep K tile halves the barriers, which they also pay for dearly.
// Specialised by override constants:
//   MODE_LINEAR:  A = x (M, K), B(k, n) = W[n, k] (weight, stored type WTYPE), bias[n]
//   MODE_MATMUL:  A = x, B = rhs (f32 bits), both strided: batch b = (outer, inner) = (b / inner, b % inner)
//                   A(b, m, k) = x[a_base + outer·a_so + inner·a_si + m·a_rs + k]
//                   B(b, k, n) = rhs[outer·b_so + inner·b_si + k·b_ks + n·b_ns]   (stride 0 broadcasts)
//   MODE_CONV2D:  implicit GEMM per image: A = W (O, C·kh·kw) (weight), B(k, p) = the input patch
//                   element of output pixel p (im2col on the fly, zero padding), bias[o]
//   WTYPE_F32, WTYPE_F16 (pairs in a u32), WTYPE_Q8_0, WTYPE_Q4_0: blocks of 32 weights as ggml, the quants first
//                   (1 byte, or a nibble, each) and the f16 block scales from word `scales_offset`.

override MODE: u32 = MODE_LINEAR;
override WTYPE: u32 = WTYPE_F32;
// Tile width: 64, or 32 for products of at most 32 columns (attention's scores · v over small heads),
// whose threads then skip the right half (b1, c·1) rather than compute zeros.
override TN: u32 = 64u;

// `p`: the sizes m, n, k and `batch`; `inner` (the inner batch size: batch b = (b / inner, b % inner));
// A's base, row, outer and inner batch strides (a_*, MODE_LINEAR and MODE_MATMUL); C's (c_*: every mode,
// C[b, m, n] = out[c_base + outer·c_so + inner·c_si + m·c_rs + n]); B's k, n, outer and inner strides (b_*,
// MODE_MATMUL); a conv's input C, H, W, kernel kh × kw, padding and output width.

const TM: u32 = 64u;
const TK: u32 = 32u;

var<workgroup> a_tile: array<vec4<f32>, 512>;  // [k][m / 4]
var<workgroup> b_tile: array<vec4<f32>, 512>;  // [k][n / 4]

fn block_scale(block: u32) -> f32 {
    let pair = unpack2x16float(w[p.scales_offset + block / 2u]);
    return select(pair.x, pair.y, (block & 1u) == 1u);
}

// Element e of the row-major weight, decoded from its stored type.
fn weight(e: u32) -> f32 {
    switch WTYPE {
        case WTYPE_F32: {
            return bitcast<f32>(w[e]);
        }
        case WTYPE_F16: {
            let pair = unpack2x16float(w[e / 2u]);
            return select(pair.x, pair.y, (e & 1u) == 1u);
        }
        case WTYPE_Q8_0: {
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

// A(m, k) and B(k, n) of one batch entry, whose A / B offsets are `off` (MODE_LINEAR and MODE_MATMUL).
fn load_a(off: u32, m: u32, k: u32) -> f32 {
    if (MODE == MODE_CONV2D) {
        return weight(m * p.k + k);
    }
    return a[off + m * p.a_rs + k];
}

fn load_b(off: u32, k: u32, n: u32) -> f32 {
    if (MODE == MODE_LINEAR) {
        return weight(n * p.k + k);
    }
    return bitcast<f32>(w[off + k * p.b_ks + n * p.b_ns]);
}

// Four consecutive rows' elements at (row .. row + 3, k) of an operand stored contiguous along k: weights
// (A of a conv, B of a linear) or x (A of a linear / matmul); zero past `rows` and `p.k`.
fn load_k_major(is_a: bool, off: u32, row: u32, rows: u32, k: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if (k < p.k) {
        for (var i = 0u; i < 4u; i++) {
            if (row + i < rows) {
                if (is_a) {
                    v[i] = load_a(off, row + i, k);
                } else {
                    v[i] = load_b(off, k, row + i);
                }
            }
        }
    }
    return v;
}

// B(k, n .. n + 3) of a matmul (at offset `off`) or of a conv (image `batch`); zero past `p.n` and `p.k`.
fn load_n_major(batch: u32, off: u32, k: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if (k >= p.k) {
        return v;
    }
    if (MODE == MODE_MATMUL) {
        for (var j = 0u; j < 4u; j++) {
            if (n + j < p.n) {
                v[j] = load_b(off, k, n + j);
            }
        }
        return v;
    }
    // im2col: one (channel, tap) for the four pixels, which step along the output row
    let taps = p.kh * p.kw;
    let c = k / taps;
    let tap = k % taps;
    let plane = ((batch * p.channels + c) * p.height) * p.width;
    var oy = n / p.out_width;
    var ox = n % p.out_width;
    for (var j = 0u; j < 4u; j++) {
        let iy = i32(oy + tap / p.kw) - i32(p.pad);
        let ix = i32(ox + tap % p.kw) - i32(p.pad);
        if (n + j < p.n && iy >= 0 && ix >= 0 && iy < i32(p.height) && ix < i32(p.width)) {
            v[j] = a[plane + u32(iy) * p.width + u32(ix)];
        }
        ox += 1u;
        if (ox == p.out_width) {
            ox = 0u;
            oy += 1u;
        }
    }
    return v;
}

// Writes C[m, n .. n + 3] (+ bias) of the batch entry at `off` where in range.
fn store(off: u32, m: u32, n: u32, v: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (n + j < p.n) {
            var y = v[j];
            if (p.has_bias != 0u) {
                y += bias[select(n + j, m, MODE == MODE_CONV2D)];
            }
            out[off + m * p.c_rs + n + j] = y;
        }
    }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tiles_n = (p.n + TN - 1u) / TN;
    let tiles_m = (p.m + TM - 1u) / TM;
    let idx = workgroup_number(wid, nwg);
    if (idx >= tiles_n * tiles_m * p.batch) {
        return;
    }
    let n0 = (idx % tiles_n) * TN;
    let m0 = ((idx / tiles_n) % tiles_m) * TM;
    let batch = idx / (tiles_n * tiles_m);
    let outer = batch / p.inner;
    let inner = batch % p.inner;
    let a_off = p.a_base + outer * p.a_so + inner * p.a_si;
    let b_off = outer * p.b_so + inner * p.b_si;
    let c_off = p.c_base + outer * p.c_so + inner * p.c_si;

    // rows m0 + 8·lid.y + (0..8) (a0, a1); columns n0 + 4·lid.x + (0..4) (b0) and 32 further (b1)
    var c00 = vec4<f32>(); var c01 = vec4<f32>(); var c10 = vec4<f32>(); var c11 = vec4<f32>();
    var c20 = vec4<f32>(); var c21 = vec4<f32>(); var c30 = vec4<f32>(); var c31 = vec4<f32>();
    var c40 = vec4<f32>(); var c41 = vec4<f32>(); var c50 = vec4<f32>(); var c51 = vec4<f32>();
    var c60 = vec4<f32>(); var c61 = vec4<f32>(); var c70 = vec4<f32>(); var c71 = vec4<f32>();
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 512 vec4s per tile, 8 per thread. A is contiguous along k in every mode: consecutive threads
        // walk k, each gathering 4 rows; so is a linear's B (weight rows). Matmul and conv B walk n.
        for (var e = li; e < 512u; e += 64u) {
            let k = e % TK;
            let r4 = (e / TK) * 4u;
            a_tile[k * 16u + r4 / 4u] = load_k_major(true, a_off, m0 + r4, p.m, k0 + k);
            if (MODE == MODE_LINEAR) {
                if (r4 < TN) {
                    b_tile[k * (TN / 4u) + r4 / 4u] = load_k_major(false, b_off, n0 + r4, p.n, k0 + k);
                }
            } else if (e < TK * TN / 4u) {
                b_tile[e] = load_n_major(batch, b_off, k0 + e / (TN / 4u), n0 + (e % (TN / 4u)) * 4u);
            }
        }
        workgroupBarrier();
        // a thread whose 8 rows all lie past M (the last row tile of M = 96, or conv_out's 6) has nothing to add
        for (var kk = 0u; kk < select(0u, TK, m0 + lid.y * 8u < p.m); kk++) {
            let a0 = a_tile[kk * 16u + lid.y * 2u];
            let a1 = a_tile[kk * 16u + lid.y * 2u + 1u];
            let b0 = b_tile[kk * (TN / 4u) + lid.x];
            c00 += a0.x * b0; c10 += a0.y * b0; c20 += a0.z * b0; c30 += a0.w * b0;
            c40 += a1.x * b0; c50 += a1.y * b0; c60 += a1.z * b0; c70 += a1.w * b0;
            if (TN == 64u) {
                let b1 = b_tile[kk * 16u + lid.x + 8u];
                c01 += a0.x * b1; c11 += a0.y * b1; c21 += a0.z * b1; c31 += a0.w * b1;
                c41 += a1.x * b1; c51 += a1.y * b1; c61 += a1.z * b1; c71 += a1.w * b1;
            }
        }
        workgroupBarrier();
    }
    let m = m0 + lid.y * 8u;
    let n = n0 + lid.x * 4u;
    store(c_off, m, n, c00); store(c_off, m + 1u, n, c10); store(c_off, m + 2u, n, c20); store(c_off, m + 3u, n, c30);
    store(c_off, m + 4u, n, c40); store(c_off, m + 5u, n, c50); store(c_off, m + 6u, n, c60); store(c_off, m + 7u, n, c70);
    if (TN == 64u) {
        let n1 = n + 32u;
        store(c_off, m, n1, c01); store(c_off, m + 1u, n1, c11); store(c_off, m + 2u, n1, c21);
        store(c_off, m + 3u, n1, c31); store(c_off, m + 4u, n1, c41); store(c_off, m + 5u, n1, c51);
        store(c_off, m + 6u, n1, c61); store(c_off, m + 7u, n1, c71);
    }
}
