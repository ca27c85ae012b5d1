//! The ggml tensor types this crate reads and writes, and the Q8_0 / Q4_0
//! block quantizers (bit-exact ports of `quantize_row_q8_0_ref` and
//! `quantize_row_q4_0_ref` in ggml-quants.c).

use half::f16;

use super::{GgufError, Result};

/// Values per Q8_0 / Q4_0 block (ggml's `QK8_0` and `QK4_0`).
pub const QK: usize = 32;

/// A ggml tensor type; the discriminant is the id stored in GGUF.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    /// Blocks of 32: f16 scale `d`, then 16 bytes of 4-bit values `q`;
    /// value `j < 16` is the low nibble of byte `j`, value `j + 16` the high
    /// nibble. `x = (q - 8) * d`.
    Q4_0 = 2,
    /// Blocks of 32: f16 scale `d`, then 32 `i8` values `q`. `x = q * d`.
    Q8_0 = 8,
}

impl GgmlType {
    pub fn from_id(id: u32) -> Result<Self> {
        match id {
            0 => Ok(Self::F32),
            1 => Ok(Self::F16),
            2 => Ok(Self::Q4_0),
            8 => Ok(Self::Q8_0),
            _ => Err(GgufError::UnknownType(id)),
        }
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    /// Q8_0 and Q4_0: stored in blocks with a scale each (F32 and F16 are plain floats).
    pub fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    /// Values per block: rows of a quantized tensor must be a multiple of it.
    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 1,
            Self::Q4_0 | Self::Q8_0 => QK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::Q4_0 => 2 + QK / 2,
            Self::Q8_0 => 2 + QK,
        }
    }

    /// Bytes taken by `n_elements` values; `None` when `n_elements` is not a
    /// whole number of blocks or the size overflows.
    pub fn n_bytes(self, n_elements: u64) -> Option<u64> {
        let block_len = self.block_len() as u64;
        if !n_elements.is_multiple_of(block_len) {
            return None;
        }
        (n_elements / block_len).checked_mul(self.block_bytes() as u64)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q8_0 => "Q8_0",
        })
    }
}

fn check_len(dtype: GgmlType, len: usize) -> Result<()> {
    if len.is_multiple_of(dtype.block_len()) {
        Ok(())
    } else {
        Err(GgufError::BlockSize { dtype, len })
    }
}

/// Encodes `xs` as `dtype`. Quantized types need `xs.len()` to be a multiple
/// of [`QK`] (and, for a tensor, so must its innermost dimension).
pub fn quantize(dtype: GgmlType, xs: &[f32]) -> Result<Vec<u8>> {
    check_len(dtype, xs.len())?;
    let mut out = Vec::with_capacity(xs.len() / dtype.block_len() * dtype.block_bytes());
    match dtype {
        GgmlType::F32 => xs.iter().for_each(|x| out.extend(x.to_le_bytes())),
        GgmlType::F16 => xs.iter().for_each(|&x| out.extend(f16::from_f32(x).to_le_bytes())),
        GgmlType::Q8_0 => xs.chunks_exact(QK).for_each(|b| quantize_q8_0(b, &mut out)),
        GgmlType::Q4_0 => xs.chunks_exact(QK).for_each(|b| quantize_q4_0(b, &mut out)),
    }
    Ok(out)
}

/// `quantize_row_q8_0_ref`: d = max|x| / 127, q = round(x / d).
fn quantize_q8_0(block: &[f32], out: &mut Vec<u8>) {
    let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    // ggml scales by the f32 inverse of the unrounded d, but stores d as f16.
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend(f16::from_f32(d).to_le_bytes());
    // f32::round is C's roundf (half away from zero).
    out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
}

/// `quantize_row_q4_0_ref`: d = -max / 8 where `max` is the value of largest
/// magnitude (sign kept), so `max` itself maps to q = 0 and q = 15 is the
/// other extreme; q = trunc(x / d + 8.5) clamped to 15.
fn quantize_q4_0(block: &[f32], out: &mut Vec<u8>) {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &x in block {
        if amax < x.abs() {
            amax = x.abs();
            max = x;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend(f16::from_f32(d).to_le_bytes());
    // `as i8` truncates toward zero like C's (int8_t) cast. ggml only clamps
    // above; the low clamp changes nothing for finite input and keeps
    // non-finite input (undefined behaviour in C) inside the nibble.
    let q = |x: f32| ((x * id + 8.5) as i8).clamp(0, 15) as u8;
    let (lo, hi) = block.split_at(QK / 2);
    out.extend(lo.iter().zip(hi).map(|(&a, &b)| q(a) | q(b) << 4));
}

/// Decodes `n_elements` values of `dtype` from `bytes`, which must hold
/// exactly that many.
pub fn dequantize(dtype: GgmlType, bytes: &[u8], n_elements: usize) -> Result<Vec<f32>> {
    check_len(dtype, n_elements)?;
    // u128 cannot overflow: at most usize::MAX blocks of at most 34 bytes.
    let expected = (n_elements / dtype.block_len()) as u128 * dtype.block_bytes() as u128;
    if expected != bytes.len() as u128 {
        return Err(GgufError::DataSize { dtype, n_elements, expected, found: bytes.len() });
    }
    let mut out = Vec::with_capacity(n_elements);
    let blocks = bytes.chunks_exact(dtype.block_bytes());
    match dtype {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for b in blocks {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                out.extend(b[2..].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                let qs = &b[2..];
                out.extend(qs.iter().map(|&q| ((q & 0x0f) as i32 - 8) as f32 * d));
                out.extend(qs.iter().map(|&q| ((q >> 4) as i32 - 8) as f32 * d));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [-scale, scale).
    fn noise(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn test_inputs() -> Vec<Vec<f32>> {
        let mut inputs = vec![
            (0..64).map(|i| i as f32).collect(),
            (0..64).map(|i| -(i as f32) / 7.0).collect(),
            vec![0.0; 32],
            noise(32 * 40, 1, 1.0),
            noise(32 * 8, 2, 1e-3),
            noise(32 * 8, 3, 300.0),
        ];
        // A block whose largest-magnitude value is negative and one with a
        // single outlier.
        let mut outlier = noise(32, 4, 0.1);
        outlier[17] = 5.0;
        inputs.push(outlier);
        inputs
    }

    #[test]
    fn f32_round_trip_is_exact() {
        for xs in test_inputs() {
            let bytes = quantize(GgmlType::F32, &xs).unwrap();
            assert_eq!(bytes.len(), xs.len() * 4);
            assert_eq!(dequantize(GgmlType::F32, &bytes, xs.len()).unwrap(), xs);
        }
    }

    #[test]
    fn f16_round_trip_within_half_precision() {
        for xs in test_inputs() {
            let bytes = quantize(GgmlType::F16, &xs).unwrap();
            let ys = dequantize(GgmlType::F16, &bytes, xs.len()).unwrap();
            for (x, y) in xs.iter().zip(&ys) {
                // f16 keeps 11 significant bits: relative error <= 2^-11
                // (plus the subnormal spacing 2^-24 near zero).
                assert!((x - y).abs() <= x.abs() * 2f32.powi(-11) + 2f32.powi(-24));
            }
        }
    }

    /// The error bound of one block: rounding to the nearest step of `d` gives
    /// d/2 (Q4_0 may clamp the opposite extreme by a whole step), plus the
    /// error from storing d as f16, scaled by the largest |q|.
    fn check_block_error(dtype: GgmlType, xs: &[f32], ys: &[f32], bytes: &[u8]) {
        for ((xb, yb), bb) in xs.chunks(QK).zip(ys.chunks(QK)).zip(bytes.chunks(dtype.block_bytes())) {
            let amax = xb.iter().fold(0f32, |m, x| m.max(x.abs()));
            let d16 = f16::from_le_bytes([bb[0], bb[1]]).to_f32().abs();
            let (d, steps, q_max) = match dtype {
                GgmlType::Q8_0 => (amax / 127.0, 0.5, 127.0),
                _ => (amax / 8.0, 1.0, 8.0),
            };
            let bound = steps * d + q_max * (d - d16).abs() + amax * 1e-6;
            for (x, y) in xb.iter().zip(yb) {
                assert!((x - y).abs() <= bound, "{dtype}: {x} -> {y}, bound {bound}");
            }
        }
    }

    #[test]
    fn quantized_round_trip_within_block_bound_and_requantizes_bit_equal() {
        for dtype in [GgmlType::Q8_0, GgmlType::Q4_0] {
            for xs in test_inputs() {
                let bytes = quantize(dtype, &xs).unwrap();
                assert_eq!(bytes.len(), xs.len() / QK * dtype.block_bytes());
                let ys = dequantize(dtype, &bytes, xs.len()).unwrap();
                check_block_error(dtype, &xs, &ys, &bytes);
                assert_eq!(quantize(dtype, &ys).unwrap(), bytes, "{dtype}");
            }
        }
    }

    #[test]
    fn q8_0_known_block() {
        // 0..31: amax = 31, d = 31/127 = 0.24409449 -> f16 0x33D0 (0.24414063);
        // q = round(x * 127/31), e.g. 3 * 4.0967742 = 12.29 -> 12,
        // 6 * 4.0967742 = 24.58 -> 25.
        let xs: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let bytes = quantize(GgmlType::Q8_0, &xs).unwrap();
        let expected_q: [u8; 32] = [
            0, 4, 8, 12, 16, 20, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 66, 70, 74, 78, 82, 86, 90, 94, 98, 102, 107,
            111, 115, 119, 123, 127,
        ];
        assert_eq!(bytes[..2], 0x33D0u16.to_le_bytes());
        assert_eq!(bytes[2..], expected_q);
        let ys = dequantize(GgmlType::Q8_0, &bytes, 32).unwrap();
        assert_eq!(ys[31], 127.0 * 0.24414063);
        assert_eq!(ys[6], 25.0 * 0.24414063);

        // Ties round away from zero: amax = 127 gives d = 1 and x = ±2.5 -> ±3.
        let mut xs = vec![0f32; 32];
        xs[0] = 127.0;
        xs[1] = 2.5;
        xs[2] = -2.5;
        let bytes = quantize(GgmlType::Q8_0, &xs).unwrap();
        assert_eq!(bytes[..5], [0x00, 0x3C, 127, 3, (-3i8) as u8]);
    }

    #[test]
    fn q4_0_known_block() {
        // 0..31: max = 31, d = 31 / -8 = -3.875 (f16 0xC3C0, exact);
        // q = trunc(x / -3.875 + 8.5): x = 0 -> 8, x = 2 -> 7.98 -> 7, x = 31 -> 0.5 -> 0.
        let xs: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let bytes = quantize(GgmlType::Q4_0, &xs).unwrap();
        let q: Vec<u8> = (0..32).map(|i| (8.5 - i as f32 / 3.875) as u8).collect();
        assert_eq!(q[..4], [8, 8, 7, 7]);
        assert_eq!(q[31], 0);
        let packed: Vec<u8> = (0..16).map(|j| q[j] | q[j + 16] << 4).collect();
        assert_eq!(bytes[..2], 0xC3C0u16.to_le_bytes());
        assert_eq!(bytes[2..], packed);
        let ys = dequantize(GgmlType::Q4_0, &bytes, 32).unwrap();
        assert_eq!(ys[31], 31.0);
        assert_eq!(ys[0], 0.0);
        assert_eq!(ys[2], 3.875);

        // The opposite extreme clamps: max = -8 gives d = 1 and x = +8 maps to
        // trunc(16.5) = 16 -> 15, i.e. 7.
        let mut xs = vec![0f32; 32];
        xs[0] = -8.0;
        xs[16] = 8.0;
        let bytes = quantize(GgmlType::Q4_0, &xs).unwrap();
        assert_eq!(bytes[..3], [0x00, 0x3C, 0xF0]);
        let ys = dequantize(GgmlType::Q4_0, &bytes, 32).unwrap();
        assert_eq!((ys[0], ys[16], ys[1]), (-8.0, 7.0, 0.0));
    }

    #[test]
    fn matches_reference_on_noise() {
        // Bytes from gguf-py's numpy ports of the ggml reference quantizers
        // (gguf.quants.quantize) on `noise(32, 7, 2.0)`.
        let xs = noise(32, 7, 2.0);
        let q8 = quantize(GgmlType::Q8_0, &xs).unwrap();
        let q4 = quantize(GgmlType::Q4_0, &xs).unwrap();
        assert_eq!(q8, REFERENCE_Q8_0);
        assert_eq!(q4, REFERENCE_Q4_0);
    }

    const REFERENCE_Q8_0: [u8; 34] = [
        201, 35, 105, 208, 82, 45, 127, 165, 18, 72, 204, 193, 195, 185, 112, 134, 194, 1, 32, 217, 254, 195, 62, 8,
        225, 9, 196, 208, 243, 197, 173, 232, 42, 174,
    ];
    const REFERENCE_Q4_0: [u8; 18] =
        [185, 179, 97, 171, 131, 197, 64, 142, 167, 115, 203, 188, 156, 204, 209, 175, 92, 216];

    #[test]
    fn rejects_partial_blocks_and_wrong_sizes() {
        for dtype in [GgmlType::Q8_0, GgmlType::Q4_0] {
            let err = quantize(dtype, &[0.0; 33]).unwrap_err().to_string();
            assert!(err.contains("multiple of 32; found 33"), "{err}");
            assert!(dequantize(dtype, &[0; 34], 33).is_err());
            assert!(dequantize(dtype, &[0; 33], 32).is_err());
        }
        let err = dequantize(GgmlType::F32, &[0; 7], 2).unwrap_err().to_string();
        assert_eq!(err, "2 F32 values take 8 bytes; found 7");
        assert!(dequantize(GgmlType::F16, &[], usize::MAX).is_err());
        assert!(dequantize(GgmlType::F16, &[], 0).unwrap().is_empty());
    }

    #[test]
    fn non_finite_input_does_not_panic() {
        let mut xs = noise(64, 5, 1.0);
        xs[3] = f32::NAN;
        xs[40] = f32::INFINITY;
        xs[41] = f32::NEG_INFINITY;
        for dtype in [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
            let bytes = quantize(dtype, &xs).unwrap();
            dequantize(dtype, &bytes, xs.len()).unwrap();
        }
        // A tiny max whose scale is subnormal makes 1/d infinite.
        let mut xs = vec![0f32; 32];
        xs[0] = 1e-38;
        xs[1] = -1e-38;
        let bytes = quantize(GgmlType::Q4_0, &xs).unwrap();
        let ys = dequantize(GgmlType::Q4_0, &bytes, 32).unwrap();
        assert!(ys.iter().all(|y| y.is_finite()));
    }

    #[test]
    fn type_ids() {
        for dtype in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0] {
            assert_eq!(GgmlType::from_id(dtype.id()).unwrap(), dtype);
        }
        let err = GgmlType::from_id(3).unwrap_err().to_string();
        assert!(err.starts_with("unknown ggml type id 3;"), "{err}");
        assert_eq!(GgmlType::Q4_0.n_bytes(64), Some(36));
        assert_eq!(GgmlType::Q8_0.n_bytes(33), None);
        assert_eq!(GgmlType::F32.n_bytes(u64::MAX), None);
    }
}
