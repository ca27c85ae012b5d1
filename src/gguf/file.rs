//! A whole GGUF file in memory.

use super::header::{parse_header, GgufHeader, HeaderStatus, MetadataValue, TensorInfo};
use super::quant::dequantize;
use super::{GgufError, Result};

/// A parsed GGUF file that owns its bytes; tensors are views into them.
#[derive(Debug)]
pub struct GgufFile {
    header: GgufHeader,
    bytes: Vec<u8>,
}

/// One tensor's header entry and its (still encoded) bytes.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

impl TensorView<'_> {
    /// Decodes (dequantizes) the tensor; the shape is `info.shape`.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        dequantize(self.info.dtype, self.data, self.info.n_elements())
    }
}

impl GgufFile {
    /// Parses the header and checks that every tensor's bytes are present.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let found = bytes.len() as u64;
        let header = match parse_header(&bytes)? {
            HeaderStatus::Complete(header) => header,
            HeaderStatus::Incomplete { need } => {
                return Err(GgufError::Truncated { what: "the header", expected: need as u64, found })
            }
        };
        let expected = header.required_file_size();
        if found < expected {
            return Err(GgufError::Truncated { what: "the tensor data", expected, found });
        }
        Ok(Self { header, bytes })
    }

    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.header.tensor(name).map(|info| self.view(info))
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> + '_ {
        self.header.tensors.iter().map(|info| self.view(info))
    }

    fn view<'a>(&'a self, info: &'a TensorInfo) -> TensorView<'a> {
        // The header checked that these sums do not overflow, and from_bytes
        // that the range is within `bytes`.
        let start = self.header.data_offset as u64 + info.offset;
        let end = start + info.n_bytes;
        let data = match (usize::try_from(start), usize::try_from(end)) {
            (Ok(start), Ok(end)) => self.bytes.get(start..end),
            _ => None,
        };
        TensorView { info, data: data.unwrap_or_default() }
    }

    pub fn metadata(&self, key: &str) -> Option<&MetadataValue> {
        self.header.metadata(key)
    }

    pub fn metadata_str(&self, key: &str) -> Result<&str> {
        self.header.metadata_str(key)
    }

    pub fn metadata_u32(&self, key: &str) -> Result<u32> {
        self.header.metadata_u32(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::tests::sample_file;
    use crate::gguf::{quantize, GgmlType, GgufWriter};

    #[test]
    fn tensors_round_trip() {
        let xs: Vec<f32> = (0..2 * 96).map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0).collect();
        let types = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];
        let mut w = GgufWriter::new();
        for dtype in types {
            w.add_tensor(&format!("w.{dtype}"), &[2, 96], dtype, &xs).unwrap();
        }
        let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        for (view, dtype) in file.tensors().zip(types) {
            assert_eq!((view.info.dtype, view.info.shape.as_slice()), (dtype, &[2, 96][..]));
            let expected = dequantize(dtype, &quantize(dtype, &xs).unwrap(), xs.len()).unwrap();
            assert_eq!(view.to_f32().unwrap(), expected);
        }
        assert_eq!(file.tensor("w.F32").unwrap().to_f32().unwrap(), xs);
        assert!(file.tensor("w.Q5_0").is_none());
    }

    #[test]
    fn sample_file_reads_back() {
        let file = GgufFile::from_bytes(sample_file()).unwrap();
        assert_eq!(file.metadata_str("general.architecture").unwrap(), "unclip-test");
        assert_eq!(file.metadata_u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(file.metadata("t.u8"), Some(&MetadataValue::U8(200)));
        let a = file.tensor("a.f32").unwrap().to_f32().unwrap();
        assert_eq!(a, [-40.0 / 9.0, -39.0 / 9.0, -38.0 / 9.0]);
        assert_eq!(file.tensors().count(), 4);
        for t in file.tensors() {
            assert_eq!(t.to_f32().unwrap().len(), t.info.n_elements());
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_file();
        let required = parse_header(&bytes)
            .ok()
            .and_then(|s| match s {
                HeaderStatus::Complete(h) => Some(h.required_file_size()),
                HeaderStatus::Incomplete { .. } => None,
            })
            .unwrap();
        for len in 0..bytes.len() {
            let result = GgufFile::from_bytes(bytes[..len].to_vec());
            assert_eq!(result.is_ok(), len as u64 >= required, "len {len}");
        }
        let err = GgufFile::from_bytes(bytes[..required as usize - 1].to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("truncated GGUF file: the tensor data needs {required} bytes; found {}", required - 1)
        );
        let err = GgufFile::from_bytes(bytes[..30].to_vec()).unwrap_err();
        assert_eq!(err.to_string(), "truncated GGUF file: the header needs 32 bytes; found 30");
    }
}
