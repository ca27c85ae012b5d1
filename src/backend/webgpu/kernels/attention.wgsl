// softmax(q·kᵀ/√d + bias)·v, flash style: a workgroup takes 64 queries of one (batch, head); keys and values
// stream through workgroup memory 8 at a time and each thread keeps a running max, sum and output row
// (online softmax), so the Lq × Lk score matrix never exists. q (N, Lq, H·d), k and v (N, Lk, H·d);
// the bias broadcasts as (N|1, Lq|1, Lk). Head size d ≤ 128.

struct Params {
    n: u32,
    lq: u32,
    lk: u32,
    heads: u32,
    d: u32,
    bias_n: u32,    // 0 when the bias is absent
    bias_q: u32,
    scale: f32,
}

const QUERIES: u32 = 64u;
const KEYS: u32 = 8u;
const DMAX: u32 = 128u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> k_tile: array<f32, 1024>;   // KEYS × DMAX
var<workgroup> v_tile: array<f32, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let blocks = (p.lq + QUERIES - 1u) / QUERIES;
    let idx = wid.x + wid.y * nwg.x;
    if (idx >= blocks * p.heads * p.n) {
        return;
    }
    let block = idx % blocks;
    let h = (idx / blocks) % p.heads;
    let b = idx / (blocks * p.heads);
    let c = p.heads * p.d;
    let qi = block * QUERIES + lid;
    let valid = qi < p.lq;

    var qv: array<f32, 128>;
    var acc: array<f32, 128>;
    if (valid) {
        let base = (b * p.lq + qi) * c + h * p.d;
        for (var j = 0u; j < p.d; j++) {
            qv[j] = q[base + j] * p.scale;
            acc[j] = 0.0;
        }
    }
    var bias_row = 0u;
    if (p.bias_n != 0u) {
        bias_row = (select(b, 0u, p.bias_n == 1u) * p.bias_q + select(qi, 0u, p.bias_q == 1u)) * p.lk;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = 0u; k0 < p.lk; k0 += KEYS) {
        for (var e = lid; e < KEYS * p.d; e += QUERIES) {
            let key = k0 + e / p.d;
            var kv = 0.0;
            var vv = 0.0;
            if (key < p.lk) {
                let off = (b * p.lk + key) * c + h * p.d + e % p.d;
                kv = k[off];
                vv = v[off];
            }
            k_tile[e] = kv;
            v_tile[e] = vv;
        }
        workgroupBarrier();
        if (valid) {
            let kn = min(KEYS, p.lk - k0);
            for (var kk = 0u; kk < kn; kk++) {
                var s = 0.0;
                for (var j = 0u; j < p.d; j++) {
                    s += qv[j] * k_tile[kk * p.d + j];
                }
                if (p.bias_n != 0u) {
                    s += bias[bias_row + k0 + kk];
                }
                let m_new = max(m, s);
                let correction = exp(m - m_new);
                let w = exp(s - m_new);
                l = l * correction + w;
                for (var j = 0u; j < p.d; j++) {
                    acc[j] = acc[j] * correction + w * v_tile[kk * p.d + j];
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if (valid) {
        let base = (b * p.lq + qi) * c + h * p.d;
        for (var j = 0u; j < p.d; j++) {
            out[base + j] = acc[j] / l;
        }
    }
}
