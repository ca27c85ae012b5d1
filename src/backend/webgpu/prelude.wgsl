// Shared by every kernel; the module starts with the declarations generated from Rust (the kernel's `Params`,
// bound as `p` at group 0, binding 0, and its op-code constants), then this, then the kernel's own file.

// The builtins the one-invocation-per-element entry points take. Workgroups are numbered linearly across a 2-D
// grid (x + y·nx), so no dimension exceeds the per-dimension limit.
struct Invocation {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// The number of workgroup `wid` in the launch. Entry points with barriers (norm, gemm) take `workgroup_id` and
// `num_workgroups` as parameters of their own and call this: a struct that also holds a local id is non-uniform
// to WGSL's uniformity analysis (Chromium's Tint refuses a barrier after a return that depends on it; naga does not).
fn workgroup_number(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// This workgroup's number in the launch.
fn workgroup_index(inv: Invocation) -> u32 {
    return workgroup_number(inv.wid, inv.nwg);
}

// This invocation's number in a launch of workgroups of `size` invocations.
fn invocation_index(inv: Invocation, size: u32) -> u32 {
    return workgroup_index(inv) * size + inv.lid;
}

// Element k of a rank-8 index array (shape, strides) packed as two vec4s.
fn at(a: array<vec4<u32>, 2>, k: i32) -> u32 {
    return a[k / 4][k % 4];
}
