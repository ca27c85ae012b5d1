// Data movement. `strided_copy`: for every index of `shape` (rank ≤ 8), dst[dst_offset + Σ c·dst_stride] =
// src[src_offset + Σ c·src_stride] — transpose, narrow and each part of a cat are one launch each.

struct Params {
    n: u32,
    rank: u32,
    src_offset: u32,
    dst_offset: u32,
    shape: array<vec4<u32>, 2>,
    src_stride: array<vec4<u32>, 2>,
    dst_stride: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    var rest = i;
    var s = p.src_offset;
    var d = p.dst_offset;
    for (var k = i32(p.rank) - 1; k >= 0; k--) {
        let size = p.shape[k / 4][k % 4];
        let coord = rest % size;
        rest = rest / size;
        s += coord * p.src_stride[k / 4][k % 4];
        d += coord * p.dst_stride[k / 4][k % 4];
    }
    dst[d] = src[s];
}
