//! A fast f32 e^x for the loops that must vectorize (softmax, GroupNorm's SiLU).

/// e^x in f32 without branches, so loops over it vectorize (Cephes' expf: range reduction by ln 2 in
/// two parts, a degree-5 polynomial, the exponent put in by bit arithmetic; within 2 ulp of the
/// correctly rounded value). Inputs above 88 give e^88; −∞ and anything below −87.3
/// give 0, the way softmax's masked scores need.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let underflow = x < -87.336_55;
    let x = x.clamp(-87.336_55, 88.0);
    // round(x·log2 e) to nearest by adding 1.5·2^23 (no libm call, so it vectorizes)
    const SHIFTER: f32 = 12_582_912.0;
    let t = x * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let scaled = f32::from_bits(((t.to_bits() as i32 - SHIFTER.to_bits() as i32 + 127) << 23) as u32) * y;
    if underflow {
        0.0
    } else {
        scaled
    }
}
