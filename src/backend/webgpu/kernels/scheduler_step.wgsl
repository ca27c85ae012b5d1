// The fused denoising step x_t → x_{t-1} (docs/math.md §11.3), elementwise with host-computed coefficients:
//   x̂0 = (x0_sample·x_t + x0_model·model) / x0_denominator, clipped to ±clip when clip_on;
//   x_{t-1} = mean_x0·x̂0 + mean_sample·x_t + σ·z, σ fixed or per element from the learned-range channels v:
//   σ = exp(½·(frac·log_max + (1 − frac)·log_min)), frac = (v + 1)/2.
// Bindings `v` and `z` are always bound (to x_t when unused) and read only when `p.noise_kind` says so.

@compute @workgroup_size(256)
fn main(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    let s = sample[i];
    var pred = (p.x0_sample * s + p.x0_model * model[i]) / p.x0_denominator;
    if (p.clip_on != 0u) {
        pred = clamp(pred, -p.clip, p.clip);
    }
    x0[i] = pred;
    var mean = p.mean_x0 * pred + p.mean_sample * s;
    if (p.noise_kind == NOISE_FIXED) {
        mean += p.sigma * z[i];
    } else if (p.noise_kind == NOISE_LEARNED_RANGE) {
        let frac = (v[i] + 1.0) / 2.0;
        mean += exp(0.5 * (frac * p.log_max + (1.0 - frac) * p.log_min)) * z[i];
    }
    prev[i] = mean;
}
