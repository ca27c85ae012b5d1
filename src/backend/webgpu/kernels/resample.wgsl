// NCHW resampling by 2: `avg_pool2x2` (floor of odd sizes, as torch) and `upsample_nearest2x`.

struct Params {
    n: u32,     // output elements
    h: u32,     // input height
    w: u32,     // input width
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn avg_pool2x2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    let ow = p.w / 2u;
    let oh = p.h / 2u;
    let plane = i / (oh * ow);
    let oy = (i / ow) % oh;
    let ox = i % ow;
    let base = plane * p.h * p.w + 2u * oy * p.w + 2u * ox;
    out[i] = 0.25 * (x[base] + x[base + 1u] + x[base + p.w] + x[base + p.w + 1u]);
}

@compute @workgroup_size(256)
fn upsample_nearest2x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    let ow = 2u * p.w;
    let oh = 2u * p.h;
    let plane = i / (oh * ow);
    let oy = (i / ow) % oh;
    let ox = i % ow;
    out[i] = x[plane * p.h * p.w + (oy / 2u) * p.w + ox / 2u];
}
