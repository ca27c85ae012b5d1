// Pointwise ops. `unary`: out = f(x); `binary`: out = a ∘ b with NumPy broadcasting, the operands read
// through per-dimension strides (0 along broadcast dims) over the output's shape (rank ≤ 8).
// `p.op` is a UNARY_* or BINARY_* code; `p.a`, `p.b` are affine's mul and add, clamp's min and max.
// `unary` reads `x` only.

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

@compute @workgroup_size(256)
fn unary(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    let v = x[i];
    var r: f32;
    switch p.op {
        case UNARY_AFFINE: { r = v * p.a + p.b; }
        case UNARY_CLAMP: { r = clamp(v, p.a, p.b); }
        case UNARY_SILU: { r = v * sigmoid(v); }
        case UNARY_GELU: { r = 0.5 * v * (1.0 + erf(v * 0.70710678118654752)); }
        default: { r = v * sigmoid(1.702 * v); }
    }
    out[i] = r;
}

@compute @workgroup_size(256)
fn binary(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    var rest = i;
    var ix = 0u;
    var iy = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let coord = rest % at(p.shape, d);
        rest = rest / at(p.shape, d);
        ix += coord * at(p.stride_x, d);
        iy += coord * at(p.stride_y, d);
    }
    let a = x[ix];
    let b = y[iy];
    var r: f32;
    switch p.op {
        case BINARY_ADD: { r = a + b; }
        case BINARY_SUB: { r = a - b; }
        default: { r = a * b; }
    }
    out[i] = r;
}
