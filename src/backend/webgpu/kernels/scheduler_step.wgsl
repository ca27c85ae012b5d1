// One denoising step x_t → x_{t-1} (spec §11.3), elementwise with host-computed coefficients:
//   x̂0 = (x0_sample·x_t + x0_model·model) / x0_denominator, clipped to ±clip when clip_on;
//   x_{t-1} = mean_x0·x̂0 + mean_sample·x_t + σ·z, σ fixed or per element from the learned-range channels v:
//   σ = exp(½·(frac·log_max + (1 − frac)·log_min)), frac = (v + 1)/2.
// Bindings `v` and `z` are always bound (to x_t when unused) and read only when the kind says so.

struct Params {
    n: u32,
    noise_kind: u32,   // 0 none, 1 fixed σ, 2 learned range
    clip_on: u32,
    _pad: u32,
    x0_sample: f32,
    x0_model: f32,
    x0_denominator: f32,
    clip: f32,
    mean_x0: f32,
    mean_sample: f32,
    sigma: f32,
    log_min: f32,
    log_max: f32,
    _pad1: f32,
    _pad2: f32,
    _pad3: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> model: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> sample: array<f32>;
@group(0) @binding(4) var<storage, read> z: array<f32>;
@group(0) @binding(5) var<storage, read_write> prev: array<f32>;
@group(0) @binding(6) var<storage, read_write> x0: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    let s = sample[i];
    var pred = (p.x0_sample * s + p.x0_model * model[i]) / p.x0_denominator;
    if (p.clip_on != 0u) {
        pred = clamp(pred, -p.clip, p.clip);
    }
    x0[i] = pred;
    var mean = p.mean_x0 * pred + p.mean_sample * s;
    if (p.noise_kind == 1u) {
        mean += p.sigma * z[i];
    } else if (p.noise_kind == 2u) {
        let frac = (v[i] + 1.0) / 2.0;
        mean += exp(0.5 * (frac * p.log_max + (1.0 - frac) * p.log_min)) * z[i];
    }
    prev[i] = mean;
}
