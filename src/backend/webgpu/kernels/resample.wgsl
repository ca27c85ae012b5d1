// NCHW resampling by 2: `avg_pool2x2` (floor of odd sizes, as torch) and `upsample_nearest2x`.

// (plane, oy, ox) of output element i of an (…, oh, ow) output.
fn output_pixel(i: u32, oh: u32, ow: u32) -> vec3<u32> {
    return vec3<u32>(i / (oh * ow), (i / ow) % oh, i % ow);
}

@compute @workgroup_size(256)
fn avg_pool2x2(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    let o = output_pixel(i, p.h / 2u, p.w / 2u);
    let base = o.x * p.h * p.w + 2u * o.y * p.w + 2u * o.z;
    out[i] = 0.25 * (x[base] + x[base + 1u] + x[base + p.w] + x[base + p.w + 1u]);
}

@compute @workgroup_size(256)
fn upsample_nearest2x(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    let o = output_pixel(i, 2u * p.h, 2u * p.w);
    out[i] = x[o.x * p.h * p.w + (o.y / 2u) * p.w + o.z / 2u];
}
