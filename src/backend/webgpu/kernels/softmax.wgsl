// The softmax of attention, between its two GEMMs (softmax.rs `attention`: scores = q·kᵀ per (batch, head),
// this, then scores·v): each row of scores (one query of one head) becomes softmax(row·scale + bias row),
// in place. One thread per row, three passes over it (max, Σ exp, normalise): rows are short (the keys)
// and many (batch · heads · queries), and no workgroup barriers, which CPU implementations pay dearly for.
// The bias broadcasts as (N|1, Lq|1, Lk).

// `p.bias_n` is 0 when the bias is absent; the launch covers `p.block` queries per (batch, head) from query
// `p.q0`, `p.rows` = N · heads · block rows.

@compute @workgroup_size(64)
fn softmax_rows(inv: Invocation) {
    let row = invocation_index(inv, 64u);
    if (row >= p.rows) { return; }
    let base = row * p.lk;
    let has_bias = p.bias_n != 0u;
    var bias_row = 0u;
    if (has_bias) {
        let b = row / p.block / p.heads;
        let qi = p.q0 + row % p.block;
        bias_row = (select(b, 0u, p.bias_n == 1u) * p.bias_q + select(qi, 0u, p.bias_q == 1u)) * p.lk;
    }
    var m = -3.0e38;
    for (var j = 0u; j < p.lk; j++) {
        var s = scores[base + j] * p.scale;
        if (has_bias) {
            s += bias[bias_row + j];
        }
        scores[base + j] = s;
        m = max(m, s);
    }
    var l = 0.0;
    for (var j = 0u; j < p.lk; j++) {
        let e = exp(scores[base + j] - m);
        scores[base + j] = e;
        l += e;
    }
    let inv_l = 1.0 / l;
    for (var j = 0u; j < p.lk; j++) {
        scores[base + j] *= inv_l;
    }
}
