// The softmax of attention, between its two GEMMs (tensor.rs `attention`: scores = q·kᵀ per (batch, head),
// this, then scores·v): each row of scores (one query of one head) becomes softmax(row·scale + bias row),
// in place. One thread per row, three passes over it (max, Σ exp, normalise): rows are short (the keys)
// and many (batch · heads · queries), and no workgroup barriers, which CPU implementations pay dearly for.
// The bias broadcasts as (N|1, Lq|1, Lk).

struct Params {
    rows: u32,      // N · heads · block
    lk: u32,
    block: u32,     // queries per (batch, head) in this launch, starting at query q0
    heads: u32,
    q0: u32,
    bias_n: u32,    // 0 when the bias is absent
    bias_q: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.lk;
    let has_bias = p.bias_n != 0u;
    var bias_row = 0u;
    if (has_bias) {
        let b = row / p.block / p.heads;
        let qi = p.q0 + row % p.block;
        bias_row = (select(b, 0u, p.bias_n == 1u) * p.bias_q + select(qi, 0u, p.bias_q == 1u)) * p.lk;
    }
    var m = -3.0e38;
    for (var j = 0u; j < p.lk; j++) {
        var s = scores[base + j] * p.scale;
        if (has_bias) {
            s += bias[bias_row + j];
        }
        scores[base + j] = s;
        m = max(m, s);
    }
    var l = 0.0;
    for (var j = 0u; j < p.lk; j++) {
        let e = exp(scores[base + j] - m);
        scores[base + j] = e;
        l += e;
    }
    let inv = 1.0 / l;
    for (var j = 0u; j < p.lk; j++) {
        scores[base + j] *= inv;
    }
}
