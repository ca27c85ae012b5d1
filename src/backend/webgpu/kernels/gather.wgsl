// Rows `ids` of a (V, D) embedding table: (ids.len(), D).

@compute @workgroup_size(256)
fn gather_rows(inv: Invocation) {
    let i = invocation_index(inv, 256u);
    if (i >= p.n) { return; }
    rows[i] = table[ids[i / p.d] * p.d + i % p.d];
}
