//! Writes GGUF v3 files with the default 32-byte alignment. A file with a quantized tensor also gets
//! `general.quantization_version` (ggml's GGML_QNT_VERSION, 2: the Q8_0/Q4_0 block layouts of quant.rs), which the GGUF
//! spec requires of it; ggml-ecosystem tools warn without it. The writer sets it, so no caller can forget it.

use std::io::{Read, Write};

use super::header::{
    check_name, check_tensor, MetadataArray, MetadataValue, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_LEN,
    MAX_METADATA, MAX_STRING_LEN, MAX_TENSORS, VERSION,
};
use super::quant::{quantize, GgmlType};
use super::{shorten, GgufError, Result};

/// `general.quantization_version`: the version of ggml's quantized block layouts (GGML_QNT_VERSION).
pub const QUANTIZATION_VERSION_KEY: &str = "general.quantization_version";
pub const QUANTIZATION_VERSION: u32 = 2;

/// Collects metadata and tensors, then writes them as one GGUF file. Every
/// `add_*` call validates against the same rules the reader enforces, so a
/// written file always reads back.
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, MetadataValue)>,
    /// Infos with their offsets into the data section, and encoded data.
    tensors: Vec<(TensorInfo, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_metadata(&mut self, key: impl Into<String>, value: MetadataValue) -> Result<()> {
        let key = key.into();
        let problem = if key.is_empty() {
            Some("empty key".to_string())
        } else if key == "general.alignment" {
            Some(format!("the writer always aligns to {DEFAULT_ALIGNMENT} bytes"))
        } else if key == QUANTIZATION_VERSION_KEY {
            Some(format!("the writer sets it ({QUANTIZATION_VERSION}) when a tensor is quantized"))
        } else if self.metadata.iter().any(|(k, _)| *k == key) {
            Some("added twice; keys must be unique".to_string())
        } else if self.metadata.len() as u64 >= MAX_METADATA - 1 {
            Some(format!(
                "more than {} metadata entries (one is kept for {QUANTIZATION_VERSION_KEY})",
                MAX_METADATA - 1
            ))
        } else {
            value_problem(&key, &value)
        };
        if let Some(problem) = problem {
            return Err(GgufError::Metadata { key: shorten(&key), problem });
        }
        self.metadata.push((key, value));
        Ok(())
    }

    /// Encodes `data` (row-major, `shape` in PyTorch order) as `dtype`.
    pub fn add_tensor(&mut self, name: &str, shape: &[usize], dtype: GgmlType, data: &[f32]) -> Result<()> {
        check_name(name)?;
        let problem = |p: String| GgufError::Tensor { name: name.to_string(), problem: p };
        if self.tensors.iter().any(|(t, _)| t.name == name) {
            return Err(problem("added twice; names must be unique".into()));
        }
        if self.tensors.len() as u64 >= MAX_TENSORS {
            return Err(problem(format!("more than {MAX_TENSORS} tensors")));
        }
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let (shape, n_bytes) = check_tensor(name, &dims, dtype)?;
        let n_elements = shape.iter().product::<usize>();
        if n_elements != data.len() {
            return Err(problem(format!("shape {shape:?} has {n_elements} elements; found {} values", data.len())));
        }
        let offset = match self.tensors.last() {
            Some((t, _)) => align(t.offset + t.n_bytes),
            None => 0,
        };
        let info = TensorInfo { name: name.to_string(), shape, dtype, offset, n_bytes };
        self.tensors.push((info, quantize(dtype, data)?));
        Ok(())
    }

    /// The metadata written: the entries added, then `general.quantization_version` where a tensor is quantized.
    fn metadata(&self) -> Vec<(&str, MetadataValue)> {
        let quantized = self.tensors.iter().any(|(t, _)| t.dtype.is_quantized());
        let version = quantized.then(|| (QUANTIZATION_VERSION_KEY, MetadataValue::U32(QUANTIZATION_VERSION)));
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.clone())).chain(version).collect()
    }

    /// Writes the file and returns its size in bytes.
    pub fn write(&self, w: &mut impl Write) -> Result<u64> {
        // Header: magic, version, tensor count, metadata count, metadata,
        // tensor infos, padding to the alignment.
        let metadata = self.metadata();
        let mut head = Vec::new();
        head.extend(MAGIC);
        head.extend(VERSION.to_le_bytes());
        head.extend((self.tensors.len() as u64).to_le_bytes());
        head.extend((metadata.len() as u64).to_le_bytes());
        for (key, value) in &metadata {
            put_string(&mut head, key);
            head.extend(value.type_id().to_le_bytes());
            put_value(&mut head, value);
        }
        for (info, _) in &self.tensors {
            put_string(&mut head, &info.name);
            head.extend((info.shape.len() as u32).to_le_bytes());
            // ggml order: innermost dimension first.
            for &d in info.shape.iter().rev() {
                head.extend((d as u64).to_le_bytes());
            }
            head.extend(info.dtype.id().to_le_bytes());
            head.extend(info.offset.to_le_bytes());
        }
        head.resize(align(head.len() as u64) as usize, 0);
        w.write_all(&head)?;

        // Data: each tensor at its offset, padded to the alignment.
        let mut written = 0;
        for (info, data) in &self.tensors {
            pad(w, info.offset - written)?;
            w.write_all(data)?;
            written = info.offset + info.n_bytes;
        }
        pad(w, align(written) - written)?;
        Ok(head.len() as u64 + align(written))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.write(&mut bytes)?;
        Ok(bytes)
    }
}

fn pad(w: &mut impl Write, n: u64) -> Result<()> {
    std::io::copy(&mut std::io::repeat(0).take(n), w)?;
    Ok(())
}

fn align(n: u64) -> u64 {
    n.div_ceil(DEFAULT_ALIGNMENT as u64) * DEFAULT_ALIGNMENT as u64
}

/// Why the reader would reject `value`, if it would.
fn value_problem(key: &str, value: &MetadataValue) -> Option<String> {
    let too_long = |s: &String| s.len() as u64 > MAX_STRING_LEN;
    match value {
        MetadataValue::String(s) if too_long(s) => {
            Some(format!("string of {} bytes; the limit is {MAX_STRING_LEN}", s.len()))
        }
        MetadataValue::Array(a) if a.len() as u64 > MAX_ARRAY_LEN => {
            Some(format!("array of {} elements; the limit is {MAX_ARRAY_LEN}", a.len()))
        }
        MetadataValue::Array(MetadataArray::String(v)) if v.iter().any(too_long) => {
            Some(format!("an element of `{}` is over {MAX_STRING_LEN} bytes", shorten(key)))
        }
        _ => None,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &MetadataValue) {
    use MetadataValue as V;
    match value {
        V::U8(v) => out.push(*v),
        V::I8(v) => out.extend(v.to_le_bytes()),
        V::U16(v) => out.extend(v.to_le_bytes()),
        V::I16(v) => out.extend(v.to_le_bytes()),
        V::U32(v) => out.extend(v.to_le_bytes()),
        V::I32(v) => out.extend(v.to_le_bytes()),
        V::F32(v) => out.extend(v.to_le_bytes()),
        V::Bool(v) => out.push(*v as u8),
        V::String(s) => put_string(out, s),
        V::Array(a) => put_array(out, a),
        V::U64(v) => out.extend(v.to_le_bytes()),
        V::I64(v) => out.extend(v.to_le_bytes()),
        V::F64(v) => out.extend(v.to_le_bytes()),
    }
}

/// Array: u32 element type, u64 length, elements.
fn put_array(out: &mut Vec<u8>, array: &MetadataArray) {
    use MetadataArray as A;
    out.extend(array.elem_type_id().to_le_bytes());
    out.extend((array.len() as u64).to_le_bytes());
    match array {
        A::U8(v) => out.extend(v),
        A::I8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        A::String(v) => v.iter().for_each(|s| put_string(out, s)),
        A::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        A::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::gguf::{parse_header, HeaderStatus};

    /// A small file with every tensor type and every metadata type.
    pub(in crate::gguf) fn sample_file() -> Vec<u8> {
        use MetadataArray as A;
        use MetadataValue as V;
        let mut w = GgufWriter::new();
        let metadata = [
            ("general.architecture", V::String("unclip-test".into())),
            ("t.u8", V::U8(200)),
            ("t.i8", V::I8(-100)),
            ("t.u16", V::U16(60_000)),
            ("t.i16", V::I16(-30_000)),
            ("t.u32", V::U32(4_000_000_000)),
            ("t.i32", V::I32(-2_000_000_000)),
            ("t.f32", V::F32(0.125)),
            ("t.bool", V::Bool(true)),
            ("t.u64", V::U64(u64::MAX)),
            ("t.i64", V::I64(i64::MIN)),
            ("t.f64", V::F64(-1e300)),
            ("t.strings", V::Array(A::String(vec!["a".into(), "".into(), "ü".into()]))),
            ("t.u32s", V::Array(A::U32(vec![1, 2, 3]))),
            ("t.bools", V::Array(A::Bool(vec![false, true]))),
            ("t.f64s", V::Array(A::F64(vec![0.5]))),
            ("t.i8s", V::Array(A::I8(vec![]))),
        ];
        for (key, value) in metadata {
            w.add_metadata(key, value).unwrap();
        }
        let ramp = |n: usize| (0..n).map(|i| (i as f32 - 40.0) / 9.0).collect::<Vec<_>>();
        w.add_tensor("a.f32", &[3], GgmlType::F32, &ramp(3)).unwrap();
        w.add_tensor("b.f16", &[2, 5], GgmlType::F16, &ramp(10)).unwrap();
        w.add_tensor("c.q8_0", &[2, 64], GgmlType::Q8_0, &ramp(128)).unwrap();
        w.add_tensor("d.q4_0", &[1, 2, 3, 32], GgmlType::Q4_0, &ramp(192)).unwrap();
        w.to_bytes().unwrap()
    }

    fn header(bytes: &[u8]) -> crate::gguf::GgufHeader {
        match parse_header(bytes).unwrap() {
            HeaderStatus::Complete(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn layout_is_aligned_and_reads_back() {
        let bytes = sample_file();
        let mut w = Vec::new();
        let mut writer = GgufWriter::new();
        writer.add_tensor("x", &[32], GgmlType::Q8_0, &[1.0; 32]).unwrap();
        assert_eq!(writer.write(&mut w).unwrap(), w.len() as u64);
        assert_eq!(bytes.len() % 32, 0);
        let h = header(&bytes);
        assert_eq!((h.version, h.alignment), (3, 32));
        assert_eq!(h.data_offset % 32, 0);
        // The last tensor ends at 224 + 108; the file is padded after it.
        assert_eq!(h.data_len(), 332);
        assert_eq!(h.required_file_size(), h.data_offset as u64 + 332);
        assert_eq!(bytes.len() as u64, align(h.required_file_size()));
        let layout: Vec<_> =
            h.tensors.iter().map(|t| (t.name.as_str(), t.shape.clone(), t.dtype, t.offset, t.n_bytes)).collect();
        assert_eq!(
            layout,
            [
                ("a.f32", vec![3], GgmlType::F32, 0, 12),
                ("b.f16", vec![2, 5], GgmlType::F16, 32, 20),
                ("c.q8_0", vec![2, 64], GgmlType::Q8_0, 64, 4 * 34),
                ("d.q4_0", vec![1, 2, 3, 32], GgmlType::Q4_0, 224, 6 * 18),
            ]
        );
        assert_eq!(h.metadata.len(), 17 + 1, "the keys added, and general.quantization_version");
        assert_eq!(h.metadata[0].0, "general.architecture");
        assert_eq!(h.metadata_str("general.architecture").unwrap(), "unclip-test");
        assert_eq!(h.metadata_u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(h.metadata_u64("t.u64").unwrap(), u64::MAX);
        assert_eq!(h.metadata_f32("t.f32").unwrap(), 0.125);
        assert!(h.metadata_bool("t.bool").unwrap());
        assert_eq!(h.metadata_strings("t.strings").unwrap(), ["a", "", "ü"]);
        assert_eq!(h.metadata_u32s("t.u32s").unwrap(), [1, 2, 3]);
        assert_eq!(h.metadata("t.i64"), Some(&MetadataValue::I64(i64::MIN)));
        assert_eq!(h.metadata("t.f64"), Some(&MetadataValue::F64(-1e300)));
        assert_eq!(h.metadata("t.i8s"), Some(&MetadataValue::Array(MetadataArray::I8(vec![]))));
        let err = h.metadata_u32("t.f32").unwrap_err().to_string();
        assert_eq!(err, "metadata `t.f32`: expected u32, found f32");
        let err = h.metadata_strings("t.u32s").unwrap_err().to_string();
        assert_eq!(err, "metadata `t.u32s`: expected array of string, found array of u32");
        let err = h.metadata_u32("nope").unwrap_err().to_string();
        assert_eq!(err, "metadata `nope`: missing; expected u32");
    }

    #[test]
    fn rejects_what_the_reader_would_reject() {
        let mut w = GgufWriter::new();
        let long = "x".repeat(64);
        let err = w.add_tensor(&long, &[1], GgmlType::F32, &[0.0]).unwrap_err();
        assert_eq!(err.to_string(), format!("tensor name `{long}` is 64 bytes; GGUF names must be under 64 bytes"));
        w.add_tensor(&long[..63], &[1], GgmlType::F32, &[0.0]).unwrap();
        let cases: [(&str, &[usize], GgmlType, usize, &str); 7] = [
            ("", &[1], GgmlType::F32, 1, "empty name"),
            (&long[..63], &[1], GgmlType::F32, 1, "added twice"),
            ("q", &[32, 33], GgmlType::Q8_0, 32 * 33, "multiple of 32"),
            ("q", &[2, 16], GgmlType::Q4_0, 32, "multiple of 32"),
            ("s", &[2, 3], GgmlType::F32, 5, "has 6 elements; found 5 values"),
            ("z", &[2, 0], GgmlType::F32, 0, "zero dimension"),
            ("d", &[1; 5], GgmlType::F32, 1, "has 5 dimensions"),
        ];
        for (name, shape, dtype, n, expected) in cases {
            let err = w.add_tensor(name, shape, dtype, &vec![0.0; n]).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }

        w.add_metadata("k", MetadataValue::U8(1)).unwrap();
        for (key, expected) in [
            ("k", "added twice"),
            ("", "empty key"),
            ("general.alignment", "aligns"),
            (QUANTIZATION_VERSION_KEY, "when a tensor is quantized"),
        ] {
            let err = w.add_metadata(key, MetadataValue::U32(64)).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        // A rejected call changes nothing.
        let h = header(&w.to_bytes().unwrap());
        assert_eq!((h.tensors.len(), h.metadata.len()), (1, 1));
    }

    #[test]
    fn quantization_version_is_written_where_a_tensor_is_quantized() {
        let version = |types: &[GgmlType]| {
            let mut w = GgufWriter::new();
            w.add_metadata("general.name", MetadataValue::String("m".into())).unwrap();
            for (i, &dtype) in types.iter().enumerate() {
                w.add_tensor(&format!("t{i}"), &[32], dtype, &[0.5; 32]).unwrap();
            }
            let h = header(&w.to_bytes().unwrap());
            assert_eq!(h.metadata_str("general.name").unwrap(), "m", "the caller's keys come first, unchanged");
            h.metadata(QUANTIZATION_VERSION_KEY).cloned()
        };
        assert_eq!(version(&[GgmlType::F32, GgmlType::F16]), None);
        for quantized in [GgmlType::Q8_0, GgmlType::Q4_0] {
            assert_eq!(version(&[GgmlType::F32, quantized]), Some(MetadataValue::U32(2)));
        }
    }
}
