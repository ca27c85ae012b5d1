// Data movement. `strided_copy`: for every index of `shape` (rank ≤ 8), dst[dst_offset + Σ c·dst_stride] =
// src[src_offset + Σ c·src_stride] — transpose, narrow and each part of a cat are one launch each.

@compute @workgroup_size(256)
fn strided_copy(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    var rest = i;
    var s = p.src_offset;
    var d = p.dst_offset;
    for (var k = i32(p.rank) - 1; k >= 0; k--) {
        let coord = rest % at(p.shape, k);
        rest = rest / at(p.shape, k);
        s += coord * at(p.src_stride, k);
        d += coord * at(p.dst_stride, k);
    }
    dst[d] = src[s];
}
