// Pointwise ops. `unary`: out = f(x); `binary`: out = a ∘ b with NumPy broadcasting, the operands read
// through per-dimension strides (0 along broadcast dims) over the output's shape (rank ≤ 8).
// Workgroups are numbered linearly across a 2-D grid (x + y·nx) so no dimension exceeds the limit.

struct Params {
    n: u32,         // output elements
    op: u32,        // unary: 0 affine, 1 clamp, 2 silu, 3 gelu (erf), 4 quick_gelu; binary: 0 add, 1 sub, 2 mul
    a: f32,         // affine: mul, clamp: min
    b: f32,         // affine: add, clamp: max
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    shape: array<vec4<u32>, 2>,
    stride_x: array<vec4<u32>, 2>,
    stride_y: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
// `unary` uses bindings 0–2 only
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;

// erf with |error| ≤ 1.5e-7 (Abramowitz & Stegun 7.1.26).
fn erf(v: f32) -> f32 {
    let s = sign(v);
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-a * a));
}

fn sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    var r: f32;
    switch p.op {
        case 0u: { r = v * p.a + p.b; }
        case 1u: { r = clamp(v, p.a, p.b); }
        case 2u: { r = v * sigmoid(v); }
        case 3u: { r = 0.5 * v * (1.0 + erf(v * 0.70710678118654752)); }
        default: { r = v * sigmoid(1.702 * v); }
    }
    out[i] = r;
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = element(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    var rest = i;
    var ix = 0u;
    var iy = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let size = p.shape[d / 4][d % 4];
        let coord = rest % size;
        rest = rest / size;
        ix += coord * p.stride_x[d / 4][d % 4];
        iy += coord * p.stride_y[d / 4][d % 4];
    }
    let a = x[ix];
    let b = y[iy];
    var r: f32;
    switch p.op {
        case 0u: { r = a + b; }
        case 1u: { r = a - b; }
        default: { r = a * b; }
    }
    out[i] = r;
}
