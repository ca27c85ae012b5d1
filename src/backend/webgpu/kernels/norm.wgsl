// Normalisations, one workgroup of 256 per normalised row (mean first, then the biased variance of the
// centred values, as torch): `group_norm` over (C/G × H·W) with per-channel γ/β, then an optional
// per-sample modulation y·scale[n, c] + shift[n, c] (a ResNet's time scale_shift) and SiLU, in one pass,
// `layer_norm` over the last dim, `l2_normalize` x / ‖x‖₂ over the last dim.

struct Params {
    rows: u32,      // group_norm: N·G; layer_norm / l2_normalize: rows of the last dim
    count: u32,     // elements per row
    plane: u32,     // group_norm: H·W (channel of element e is g·C/G + e / plane)
    channels_per_group: u32,
    groups: u32,
    silu: u32,
    eps: f32,
    modulated: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// `l2_normalize` uses bindings 0–2 only
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
// `group_norm` only: (N, C) each, read when `modulated`
@group(0) @binding(5) var<storage, read> mod_scale: array<f32>;
@group(0) @binding(6) var<storage, read> mod_shift: array<f32>;

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
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
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
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.count;
    let m = moments(base, lid);
    for (var e = lid; e < p.count; e += 256u) {
        out[base + e] = (x[base + e] - m.x) * m.y * gamma[e] + beta[e];
    }
}

@compute @workgroup_size(256)
fn l2_normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.count;
    var q = 0.0;
    for (var e = lid; e < p.count; e += 256u) {
        q += x[base + e] * x[base + e];
    }
    let norm = sqrt(workgroup_sum(q, lid));
    for (var e = lid; e < p.count; e += 256u) {
        out[base + e] = x[base + e] / norm;
    }
}
