// Normalisations, one workgroup of 256 per normalised row (mean first, then the biased variance of the
// centred values, as torch): `group_norm` over (C/G × H·W) with per-channel γ/β, then an optional
// per-sample modulation y·scale[n, c] + shift[n, c] (a ResNet's time scale_shift; `mod_scale`, `mod_shift`
// (N, C), read when `p.modulated`) and SiLU, in one pass; a LayerNorm is its case of one group of
// one-value planes. `l2_normalize` x / ‖x‖₂ over the last dim (it reads `x` and writes `out` only).

// Rows: `p.rows` (N·G) of `p.count` elements; the channel of element e of row g is g·C/G + e / `p.plane`.

var<workgroup> partial: array<f32, 256>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// (mean, 1/sqrt(var + eps)) of row `base .. base + count`.
fn moments(base: u32, lid: u32) -> vec2<f32> {
    var s = 0.0;
    for (var e = lid; e < p.count; e += 256u) {
        s += x[base + e];
    }
    let mean = workgroup_sum(s, lid) / f32(p.count);
    var q = 0.0;
    for (var e = lid; e < p.count; e += 256u) {
        let d = x[base + e] - mean;
        q += d * d;
    }
    let variance = workgroup_sum(q, lid) / f32(p.count);
    return vec2<f32>(mean, inverseSqrt(variance + p.eps));
}

@compute @workgroup_size(256)
fn group_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_number(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.count;
    let m = moments(base, lid);
    let first_channel = (row % p.groups) * p.channels_per_group;
    let first_nc = (row / p.groups) * p.groups * p.channels_per_group + first_channel;
    for (var e = lid; e < p.count; e += 256u) {
        let ch = first_channel + e / p.plane;
        var y = (x[base + e] - m.x) * m.y * gamma[ch] + beta[ch];
        if (p.modulated != 0u) {
            let nc = first_nc + e / p.plane;
            y = y * mod_scale[nc] + mod_shift[nc];
        }
        if (p.silu != 0u) {
            y = y / (1.0 + exp(-y));
        }
        out[base + e] = y;
    }
}

@compute @workgroup_size(256)
fn l2_normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let base = workgroup_number(wid, nwg) * p.count; // one row per workgroup
    if (base >= p.rows * p.count) { return; }
    var q = 0.0;
    for (var e = lid; e < p.count; e += 256u) {
        q += x[base + e] * x[base + e];
    }
    let norm = sqrt(workgroup_sum(q, lid));
    for (var e = lid; e < p.count; e += 256u) {
        out[base + e] = x[base + e] / norm;
    }
}
