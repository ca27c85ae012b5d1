//! The GGUF header (metadata and tensor infos) and its incremental parser.

use std::collections::HashSet;

use super::quant::GgmlType;
use super::{shorten, GgufError, Result};

pub(super) const MAGIC: &[u8; 4] = b"GGUF";
/// The version this crate writes; version 2 has the same layout and is read too.
pub(super) const VERSION: u32 = 3;
/// Used when the metadata has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: usize = 32;
pub const MAX_ALIGNMENT: usize = 1 << 16;
pub const MAX_TENSORS: u64 = 1 << 16;
pub const MAX_METADATA: u64 = 1 << 16;
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
pub const MAX_STRING_LEN: u64 = 1 << 24;
/// ggml's `GGML_MAX_NAME`: names are stored in a 64-byte buffer with a NUL,
/// so they must be shorter than this.
pub const MAX_NAME_LEN: usize = 64;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;

/// A metadata value. Variants are in GGUF type-id order (0..=12).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetadataArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: GGUF arrays hold one element type, and ggml rejects
/// arrays of arrays, so there is no nested variant.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetadataValue {
    /// The GGUF value type id.
    pub fn type_id(&self) -> u32 {
        match self {
            Self::U8(_) => 0,
            Self::I8(_) => 1,
            Self::U16(_) => 2,
            Self::I16(_) => 3,
            Self::U32(_) => 4,
            Self::I32(_) => 5,
            Self::F32(_) => 6,
            Self::Bool(_) => 7,
            Self::String(_) => 8,
            Self::Array(_) => 9,
            Self::U64(_) => 10,
            Self::I64(_) => 11,
            Self::F64(_) => 12,
        }
    }

    pub fn type_name(&self) -> &'static str {
        TYPE_NAMES[self.type_id() as usize]
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            Self::U32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Self::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl MetadataArray {
    /// The GGUF type id of the elements.
    pub fn elem_type_id(&self) -> u32 {
        match self {
            Self::U8(_) => 0,
            Self::I8(_) => 1,
            Self::U16(_) => 2,
            Self::I16(_) => 3,
            Self::U32(_) => 4,
            Self::I32(_) => 5,
            Self::F32(_) => 6,
            Self::Bool(_) => 7,
            Self::String(_) => 8,
            Self::U64(_) => 10,
            Self::I64(_) => 11,
            Self::F64(_) => 12,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const TYPE_NAMES: [&str; 13] =
    ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// PyTorch order (outermost first): GGUF's dims reversed.
    pub shape: Vec<usize>,
    pub dtype: GgmlType,
    /// Start of the data, relative to [`GgufHeader::data_offset`].
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    /// In file order.
    pub metadata: Vec<(String, MetadataValue)>,
    /// In file order.
    pub tensors: Vec<TensorInfo>,
    /// Start of the data section in the file (a multiple of `alignment`).
    pub data_offset: usize,
    pub alignment: usize,
}

/// What [`parse_header`] made of a prefix of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderStatus {
    /// The header goes on past the prefix; no attempt can get further until
    /// the prefix is at least `need` bytes long (`need > prefix.len()`).
    Incomplete {
        need: usize,
    },
    Complete(GgufHeader),
}

impl GgufHeader {
    /// Bytes of the data section that the tensors use.
    pub fn data_len(&self) -> u64 {
        let ends = self.tensors.iter().map(|t| t.offset.saturating_add(t.n_bytes));
        ends.max().unwrap_or(0)
    }

    /// The smallest file that holds every tensor.
    pub fn required_file_size(&self) -> u64 {
        (self.data_offset as u64).saturating_add(self.data_len())
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn metadata(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn metadata_str(&self, key: &str) -> Result<&str> {
        self.typed(key, "string", MetadataValue::as_str)
    }

    pub fn metadata_u32(&self, key: &str) -> Result<u32> {
        self.typed(key, "u32", MetadataValue::as_u32)
    }

    pub fn metadata_u64(&self, key: &str) -> Result<u64> {
        self.typed(key, "u64", MetadataValue::as_u64)
    }

    pub fn metadata_f32(&self, key: &str) -> Result<f32> {
        self.typed(key, "f32", MetadataValue::as_f32)
    }

    pub fn metadata_bool(&self, key: &str) -> Result<bool> {
        self.typed(key, "bool", MetadataValue::as_bool)
    }

    /// An array of strings, e.g. a tokenizer vocabulary.
    pub fn metadata_strings(&self, key: &str) -> Result<&[String]> {
        self.typed(key, "array of string", |v| match v.as_array()? {
            MetadataArray::String(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    pub fn metadata_u32s(&self, key: &str) -> Result<&[u32]> {
        self.typed(key, "array of u32", |v| match v.as_array()? {
            MetadataArray::U32(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    fn typed<'a, T>(&'a self, key: &str, expected: &str, get: impl Fn(&'a MetadataValue) -> Option<T>) -> Result<T> {
        let problem = match self.metadata(key) {
            None => format!("missing; expected {expected}"),
            Some(value) => match get(value) {
                Some(v) => return Ok(v),
                None => match value.as_array() {
                    Some(a) => format!("expected {expected}, found array of {}", TYPE_NAMES[a.elem_type_id() as usize]),
                    None => format!("expected {expected}, found {}", value.type_name()),
                },
            },
        };
        Err(GgufError::Metadata { key: key.to_string(), problem })
    }
}

/// Parses the GGUF header from the first bytes of a file.
///
/// Call it again with a longer prefix whenever it answers
/// [`HeaderStatus::Incomplete`]; it answers an error as soon as the bytes it
/// has are invalid, so a wrong file is rejected before it is downloaded.
pub fn parse_header(prefix: &[u8]) -> Result<HeaderStatus> {
    let mut reader = Reader { bytes: prefix, pos: 0 };
    match reader.header() {
        Ok(header) => Ok(HeaderStatus::Complete(header)),
        Err(Stop::Need(need)) => Ok(HeaderStatus::Incomplete { need }),
        Err(Stop::Bad(e)) => Err(e),
    }
}

/// Why the reader stopped: the prefix ends before byte `Need(n)`, or the bytes
/// are invalid.
enum Stop {
    Need(usize),
    Bad(GgufError),
}

impl From<GgufError> for Stop {
    fn from(e: GgufError) -> Self {
        Stop::Bad(e)
    }
}

type Parsed<T> = std::result::Result<T, Stop>;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, or `Stop::Need` with the prefix length that has them.
    fn take(&mut self, n: usize) -> Parsed<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| GgufError::Limit {
            what: "the header size".to_string(),
            found: u64::MAX,
            max: usize::MAX as u64,
        })?;
        let bytes = self.bytes.get(self.pos..end).ok_or(Stop::Need(end))?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Parsed<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Parsed<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Parsed<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u64 count, checked against `max` before anything is sized by it.
    fn count(&mut self, what: impl FnOnce() -> String, max: u64) -> Parsed<usize> {
        let n = self.u64()?;
        if n > max {
            return Err(GgufError::Limit { what: what(), found: n, max }.into());
        }
        // max <= 2^24 fits in usize on every target.
        Ok(n as usize)
    }

    /// A GGUF string: u64 length, then that many UTF-8 bytes.
    fn string(&mut self, what: impl Fn() -> String) -> Parsed<String> {
        let len = self.count(|| format!("the length of {}", what()), MAX_STRING_LEN)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::NotUtf8 { what: what() }.into())
    }

    /// `n` fixed-size little-endian values, taken as one slice so that an
    /// incomplete array asks for all of its bytes at once.
    fn fixed<const N: usize, T>(&mut self, n: usize, decode: fn([u8; N]) -> T) -> Parsed<Vec<T>> {
        let bytes = self.take(n * N)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0; N];
                a.copy_from_slice(c);
                decode(a)
            })
            .collect())
    }

    fn bool(key: &str, byte: u8) -> Result<bool> {
        match byte {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                Err(GgufError::Metadata { key: shorten(key), problem: format!("bool byte is {byte}; expected 0 or 1") })
            }
        }
    }

    /// A metadata value of GGUF type `ty`.
    fn value(&mut self, key: &str, ty: u32) -> Parsed<MetadataValue> {
        use MetadataValue as V;
        Ok(match ty {
            0 => V::U8(self.array::<1>()?[0]),
            1 => V::I8(i8::from_le_bytes(self.array()?)),
            2 => V::U16(u16::from_le_bytes(self.array()?)),
            3 => V::I16(i16::from_le_bytes(self.array()?)),
            4 => V::U32(u32::from_le_bytes(self.array()?)),
            5 => V::I32(i32::from_le_bytes(self.array()?)),
            6 => V::F32(f32::from_le_bytes(self.array()?)),
            7 => V::Bool(Self::bool(key, self.array::<1>()?[0])?),
            8 => V::String(self.string(|| format!("metadata `{}`", shorten(key)))?),
            9 => V::Array(self.metadata_array(key)?),
            10 => V::U64(u64::from_le_bytes(self.array()?)),
            11 => V::I64(i64::from_le_bytes(self.array()?)),
            12 => V::F64(f64::from_le_bytes(self.array()?)),
            _ => return Err(unknown_value_type(key, ty).into()),
        })
    }

    /// An array value: u32 element type, u64 length, elements.
    fn metadata_array(&mut self, key: &str) -> Parsed<MetadataArray> {
        use MetadataArray as A;
        let ty = self.u32()?;
        let what = || format!("the length of array `{}`", shorten(key));
        let n = self.count(what, MAX_ARRAY_LEN)?;
        Ok(match ty {
            0 => A::U8(self.take(n)?.to_vec()),
            1 => A::I8(self.fixed(n, i8::from_le_bytes)?),
            2 => A::U16(self.fixed(n, u16::from_le_bytes)?),
            3 => A::I16(self.fixed(n, i16::from_le_bytes)?),
            4 => A::U32(self.fixed(n, u32::from_le_bytes)?),
            5 => A::I32(self.fixed(n, i32::from_le_bytes)?),
            6 => A::F32(self.fixed(n, f32::from_le_bytes)?),
            7 => {
                let bytes = self.take(n)?;
                A::Bool(bytes.iter().map(|&b| Self::bool(key, b)).collect::<Result<_>>()?)
            }
            8 => {
                // Strings are variable-sized: read one by one, so memory only
                // grows with bytes that exist.
                let mut strings = Vec::new();
                for i in 0..n {
                    strings.push(self.string(|| format!("element {i} of `{}`", shorten(key)))?);
                }
                A::String(strings)
            }
            9 => {
                return Err(GgufError::Metadata {
                    key: shorten(key),
                    problem: "arrays of arrays are not supported (ggml rejects them too)".into(),
                }
                .into())
            }
            10 => A::U64(self.fixed(n, u64::from_le_bytes)?),
            11 => A::I64(self.fixed(n, i64::from_le_bytes)?),
            12 => A::F64(self.fixed(n, f64::from_le_bytes)?),
            _ => return Err(unknown_value_type(key, ty).into()),
        })
    }

    fn header(&mut self) -> Parsed<GgufHeader> {
        // Reject a foreign file from its first bytes (an HTML error page, say).
        let seen = &self.bytes[..self.bytes.len().min(MAGIC.len())];
        if !MAGIC.starts_with(seen) {
            let start = &self.bytes[..self.bytes.len().min(8)];
            return Err(GgufError::BadMagic { found: start.escape_ascii().to_string() }.into());
        }
        // Each byte of the magic can reject the file, so ask for them one by one.
        if seen.len() < MAGIC.len() {
            return Err(Stop::Need(seen.len() + 1));
        }
        self.pos = MAGIC.len();

        let version = self.u32()?;
        if version != VERSION && version != 2 {
            let note = match version {
                1 => " (version 1 used 32-bit counts and is not supported)",
                _ if matches!(version.swap_bytes(), 2 | 3) => {
                    " (this looks like a big-endian file; only little-endian is supported)"
                }
                _ => "",
            };
            return Err(GgufError::Version { found: version, note }.into());
        }
        let n_tensors = self.count(|| "the tensor count".into(), MAX_TENSORS)?;
        let n_metadata = self.count(|| "the metadata entry count".into(), MAX_METADATA)?;

        // Metadata: key string, u32 value type, value.
        let mut metadata = Vec::new();
        let mut keys = HashSet::new();
        let mut alignment = DEFAULT_ALIGNMENT;
        for i in 0..n_metadata {
            let key = self.string(|| format!("metadata key {i}"))?;
            if !keys.insert(key.clone()) {
                return Err(GgufError::Metadata {
                    key: shorten(&key),
                    problem: "appears twice; keys must be unique".into(),
                }
                .into());
            }
            let ty = self.u32()?;
            let value = self.value(&key, ty)?;
            if key == "general.alignment" {
                alignment = check_alignment(&value)?;
            }
            metadata.push((key, value));
        }

        // Tensor infos: name, u32 n_dims, u64 dims[n_dims] (innermost first),
        // u32 ggml type, u64 offset into the data section.
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut names = HashSet::new();
        for i in 0..n_tensors {
            let name = self.string(|| format!("the name of tensor {i}"))?;
            check_name(&name)?;
            if !names.insert(name.clone()) {
                return Err(tensor_error(&name, "appears twice; names must be unique"));
            }
            let n_dims = self.u32()?;
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                let problem = format!("has {n_dims} dimensions; expected 1 to {MAX_DIMS}");
                return Err(tensor_error(&name, &problem));
            }
            let mut dims = Vec::with_capacity(MAX_DIMS);
            for _ in 0..n_dims {
                dims.push(self.u64()?);
            }
            dims.reverse(); // to PyTorch order
            let dtype = GgmlType::from_id(self.u32()?).map_err(|e| tensor_error(&name, &e.to_string()))?;
            let (shape, n_bytes) = check_tensor(&name, &dims, dtype)?;
            let offset = self.u64()?;
            if !offset.is_multiple_of(alignment as u64) {
                let problem = format!("offset {offset} is not a multiple of the alignment {alignment}");
                return Err(tensor_error(&name, &problem));
            }
            if offset.checked_add(n_bytes).is_none() {
                let problem = format!("offset {offset} + {n_bytes} bytes overflows");
                return Err(tensor_error(&name, &problem));
            }
            tensors.push(TensorInfo { name, shape, dtype, offset, n_bytes });
        }
        check_overlap(&tensors)?;

        // The data section starts at the next multiple of the alignment; the
        // padding itself is not needed to know that.
        let data_offset = self.pos.div_ceil(alignment) * alignment;
        for t in &tensors {
            let end = t.offset + t.n_bytes;
            if (data_offset as u64).checked_add(end).is_none() {
                let problem = format!("ends {end} bytes into the data section, past 2^64 bytes");
                return Err(tensor_error(&t.name, &problem));
            }
        }
        Ok(GgufHeader { version, metadata, tensors, data_offset, alignment })
    }
}

fn unknown_value_type(key: &str, ty: u32) -> GgufError {
    GgufError::Metadata { key: shorten(key), problem: format!("value type {ty} is unknown; expected 0 to 12") }
}

fn tensor_error(name: &str, problem: &str) -> Stop {
    Stop::Bad(GgufError::Tensor { name: shorten(name), problem: problem.to_string() })
}

/// `general.alignment` must be a u32 power of two (ggml's rule) and, here,
/// at most [`MAX_ALIGNMENT`].
fn check_alignment(value: &MetadataValue) -> Result<usize> {
    match *value {
        MetadataValue::U32(a) if a.is_power_of_two() && a as usize <= MAX_ALIGNMENT => Ok(a as usize),
        MetadataValue::U32(a) => Err(GgufError::Alignment { found: a.to_string() }),
        _ => Err(GgufError::Alignment { found: format!("a {}", value.type_name()) }),
    }
}

/// Names must be non-empty and fit ggml's fixed-size name buffer.
pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(GgufError::Tensor {
            name: String::new(),
            problem: "empty name; tensor names must be non-empty".into(),
        });
    }
    if name.len() >= MAX_NAME_LEN {
        return Err(GgufError::NameTooLong { name: shorten(name), len: name.len() });
    }
    Ok(())
}

/// Validates a shape (PyTorch order) for `dtype` and returns it as `usize`s
/// with the tensor's size in bytes.
pub(super) fn check_tensor(name: &str, shape: &[u64], dtype: GgmlType) -> Result<(Vec<usize>, u64)> {
    let problem = |p: String| GgufError::Tensor { name: shorten(name), problem: p };
    if shape.is_empty() || shape.len() > MAX_DIMS {
        return Err(problem(format!("has {} dimensions; expected 1 to {MAX_DIMS}", shape.len())));
    }
    if shape.contains(&0) {
        return Err(problem(format!("has a zero dimension in shape {shape:?}")));
    }
    let n_elements = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| problem(format!("shape {shape:?} has more elements than fit in memory")))?;
    let row = shape[shape.len() - 1];
    if !row.is_multiple_of(dtype.block_len() as u64) {
        return Err(problem(format!(
            "{dtype} needs the innermost dimension to be a multiple of {}; shape is {shape:?}",
            dtype.block_len()
        )));
    }
    let n_bytes = dtype
        .n_bytes(n_elements)
        .ok_or_else(|| problem(format!("shape {shape:?} of {dtype} overflows its byte size")))?;
    // Every dimension is at most the element count, which fits in usize.
    Ok((shape.iter().map(|&d| d as usize).collect(), n_bytes))
}

/// Tensors may be stored in any order but must not share bytes.
fn check_overlap(tensors: &[TensorInfo]) -> Result<()> {
    let mut spans: Vec<(u64, u64, &str)> =
        tensors.iter().map(|t| (t.offset, t.offset + t.n_bytes, t.name.as_str())).collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let ((a_start, a_end, a), (b_start, b_end, b)) = (pair[0], pair[1]);
        if b_start < a_end {
            return Err(GgufError::Tensor {
                name: b.to_string(),
                problem: format!("bytes {b_start}..{b_end} overlap tensor `{a}` at {a_start}..{a_end}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::tests::sample_file;

    #[test]
    fn every_prefix_is_incomplete_with_a_minimal_need() {
        let bytes = sample_file();
        let full = match parse_header(&bytes).unwrap() {
            HeaderStatus::Complete(h) => h,
            other => panic!("{other:?}"),
        };
        let mut last_need = 0;
        let mut len = 0;
        while let HeaderStatus::Incomplete { need } = parse_header(&bytes[..len]).unwrap() {
            assert!(need > len && need >= last_need, "len {len}: need {need}");
            // Nothing shorter than `need` gets further.
            let again = parse_header(&bytes[..need - 1]).unwrap();
            assert_eq!(again, HeaderStatus::Incomplete { need });
            last_need = need;
            len += 1;
        }
        // The header ends where the last tensor info ends; the padding after
        // it is not needed.
        assert_eq!(len, last_need);
        assert!(full.data_offset >= len && full.data_offset < len + 32);
        for end in len..bytes.len() {
            assert_eq!(parse_header(&bytes[..end]).unwrap(), HeaderStatus::Complete(full.clone()));
        }
    }

    /// Hand-made headers: `Raw::new(version, n_tensors, n_metadata)`, then fields.
    struct Raw(Vec<u8>);

    impl Raw {
        fn new(version: u32, n_tensors: u64, n_metadata: u64) -> Self {
            Raw(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_metadata)
        }
        fn bytes(mut self, b: &[u8]) -> Self {
            self.0.extend(b);
            self
        }
        fn u32(self, v: u32) -> Self {
            self.bytes(&v.to_le_bytes())
        }
        fn u64(self, v: u64) -> Self {
            self.bytes(&v.to_le_bytes())
        }
        fn str(self, s: &str) -> Self {
            self.u64(s.len() as u64).bytes(s.as_bytes())
        }
        fn kv_u32(self, key: &str, v: u32) -> Self {
            self.str(key).u32(4).u32(v)
        }
        /// A tensor info; `dims` in ggml order.
        fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
            let mut raw = self.str(name).u32(dims.len() as u32);
            for &d in dims {
                raw = raw.u64(d);
            }
            raw.u32(ty).u64(offset)
        }
        fn parse(&self) -> Result<HeaderStatus> {
            parse_header(&self.0)
        }
        fn err(&self) -> String {
            match self.parse() {
                Err(e) => e.to_string(),
                Ok(status) => panic!("expected an error, got {status:?}"),
            }
        }
        fn header(&self) -> GgufHeader {
            match self.parse() {
                Ok(HeaderStatus::Complete(h)) => h,
                other => panic!("expected a header, got {other:?}"),
            }
        }
    }

    #[test]
    fn magic_and_version() {
        let err = Raw(b"<!DOCTYPE html>".to_vec()).err();
        assert_eq!(err, r#"not a GGUF file (starts with b"<!DOCTYP"; expected b"GGUF")"#);
        // A wrong first byte is enough; a right one asks for more.
        assert!(Raw(b"PK".to_vec()).err().starts_with("not a GGUF file"));
        assert!(Raw(b"GGUX".to_vec()).err().starts_with("not a GGUF file"));
        assert_eq!(Raw(b"GG".to_vec()).parse().unwrap(), HeaderStatus::Incomplete { need: 3 });
        assert_eq!(Raw(vec![]).parse().unwrap(), HeaderStatus::Incomplete { need: 1 });

        assert_eq!(Raw::new(2, 0, 0).header().version, 2);
        assert_eq!(Raw::new(3, 0, 0).header().data_offset, 32);
        for (version, note) in [(1, "32-bit counts"), (4, "expected 3"), (3 << 24, "big-endian")] {
            let err = Raw::new(version, 0, 0).err();
            assert!(err.starts_with(&format!("unsupported GGUF version {version}")), "{err}");
            assert!(err.contains(note), "{err}");
        }
    }

    #[test]
    fn absurd_counts_fail_before_allocating() {
        // 24 bytes claiming 2^60 (or 2^64 - 1) entries.
        for n in [1 << 60, u64::MAX, MAX_TENSORS + 1] {
            let err = Raw::new(3, n, 0).err();
            assert_eq!(err, format!("the tensor count is {n}; the limit is 65536"));
            let err = Raw::new(3, 0, n).err();
            assert!(err.starts_with("the metadata entry count is"), "{err}");
        }
        let err = Raw::new(3, 0, 1).u64(u64::MAX).err();
        assert_eq!(err, "the length of metadata key 0 is 18446744073709551615; the limit is 16777216");
        let err = Raw::new(3, 0, 1).str("k").u32(8).u64(1 << 40).err();
        assert!(err.starts_with("the length of metadata `k` is 1099511627776"), "{err}");
        let err = Raw::new(3, 0, 1).str("k").u32(9).u32(10).u64(u64::MAX).err();
        assert!(err.starts_with("the length of array `k` is 18446744073709551615"), "{err}");
        let err = Raw::new(3, 1, 0).u64(1 << 63).err();
        assert!(err.starts_with("the length of the name of tensor 0 is"), "{err}");

        // Counts within the limits only ask for more bytes.
        let raw = Raw::new(3, MAX_TENSORS, MAX_METADATA);
        assert_eq!(raw.parse().unwrap(), HeaderStatus::Incomplete { need: 32 });
        let raw = Raw::new(3, 0, 1).str("k").u32(9).u32(10).u64(MAX_ARRAY_LEN);
        assert_eq!(raw.parse().unwrap(), HeaderStatus::Incomplete { need: raw.0.len() + 8 * (1 << 24) });
        let raw = Raw::new(3, 0, 1).u64(MAX_STRING_LEN);
        let need = raw.0.len() + (1 << 24);
        assert_eq!(raw.parse().unwrap(), HeaderStatus::Incomplete { need });
    }

    #[test]
    fn bad_metadata() {
        let cases: [(Raw, &str); 7] = [
            (Raw::new(3, 0, 1).str("k").u32(13), "metadata `k`: value type 13 is unknown"),
            (Raw::new(3, 0, 1).str("k").u32(9).u32(9).u64(0), "arrays of arrays"),
            (Raw::new(3, 0, 1).str("k").u32(7).bytes(&[2]), "bool byte is 2"),
            (Raw::new(3, 0, 1).str("k").u32(9).u32(7).u64(2).bytes(&[1, 5]), "bool byte is 5"),
            (Raw::new(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2), "metadata `k`: appears twice"),
            (Raw::new(3, 0, 1).u64(2).bytes(&[0xff, 0xfe]), "metadata key 0 is not valid UTF-8"),
            (Raw::new(3, 0, 1).str("k").u32(8).u64(1).bytes(&[0x80]), "metadata `k` is not valid UTF-8"),
        ];
        for (raw, expected) in cases {
            let err = raw.err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn alignment() {
        let h = Raw::new(3, 1, 1).kv_u32("general.alignment", 64).tensor("t", &[32], 0, 128).header();
        assert_eq!((h.alignment, h.data_offset % 64), (64, 0));
        let h = Raw::new(3, 1, 1).kv_u32("general.alignment", 1).tensor("t", &[3], 1, 7).header();
        assert_eq!(h.data_offset, h.required_file_size() as usize - 7 - 6);

        for a in [0, 3, 48, 1 << 17, u32::MAX] {
            let err = Raw::new(3, 0, 1).kv_u32("general.alignment", a).err();
            assert_eq!(err, format!("general.alignment must be a u32 power of two from 1 to 65536; found {a}"));
        }
        let err = Raw::new(3, 0, 1).str("general.alignment").u32(10).u64(32).err();
        assert!(err.ends_with("found a u64"), "{err}");
        let err = Raw::new(3, 1, 0).tensor("t", &[32], 0, 16).err();
        assert_eq!(err, "tensor `t`: offset 16 is not a multiple of the alignment 32");
    }

    #[test]
    fn bad_tensor_infos() {
        let long = "n".repeat(70);
        let cases: [(Raw, &str); 15] = [
            (
                Raw::new(3, 1, 0).tensor(&long, &[1], 0, 0),
                "tensor name `nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn` \
                 is 70 bytes; GGUF names must be under 64 bytes",
            ),
            (Raw::new(3, 1, 0).tensor(&long[..64], &[1], 0, 0), "is 64 bytes"),
            (Raw::new(3, 1, 0).tensor("", &[1], 0, 0), "empty name"),
            (Raw::new(3, 1, 0).u64(1).bytes(&[0xc3]), "the name of tensor 0 is not valid UTF-8"),
            (Raw::new(3, 2, 0).tensor("t", &[1], 0, 0).tensor("t", &[1], 0, 32), "tensor `t`: appears twice"),
            (Raw::new(3, 1, 0).tensor("t", &[], 0, 0), "has 0 dimensions; expected 1 to 4"),
            (Raw::new(3, 1, 0).tensor("t", &[1; 5], 0, 0), "has 5 dimensions"),
            (Raw::new(3, 1, 0).str("t").u32(u32::MAX), "has 4294967295 dimensions"),
            (Raw::new(3, 1, 0).tensor("t", &[4, 0], 0, 0), "zero dimension"),
            (Raw::new(3, 1, 0).tensor("t", &[u64::MAX, 2], 0, 0), "more elements than fit in memory"),
            (Raw::new(3, 1, 0).tensor("t", &[1 << 62], 0, 0), "overflows its byte size"),
            (Raw::new(3, 1, 0).tensor("t", &[1], 3, 0), "tensor `t`: unknown ggml type id 3"),
            (
                Raw::new(3, 1, 0).tensor("t", &[48, 2], 8, 0),
                "Q8_0 needs the innermost dimension to be a multiple of 32; shape is [2, 48]",
            ),
            (
                Raw::new(3, 1, 0).tensor("t", &[64], 8, u64::MAX - 31),
                "tensor `t`: offset 18446744073709551584 + 68 bytes overflows",
            ),
            (
                Raw::new(3, 1, 0).tensor("t", &[16], 0, u64::MAX - 127),
                "tensor `t`: ends 18446744073709551552 bytes into the data section, past 2^64",
            ),
        ];
        for (raw, expected) in cases {
            let err = raw.err();
            assert!(err.contains(expected), "{err}");
        }
        // Type ids of other ggml types, and garbage.
        for ty in [3, 9, 14, 30, u32::MAX] {
            let err = Raw::new(3, 1, 0).tensor("t", &[32], ty, 0).err();
            assert!(err.contains(&format!("unknown ggml type id {ty};")), "{err}");
        }
    }

    #[test]
    fn overlapping_tensors() {
        // Any order is fine as long as the bytes are disjoint.
        let h = Raw::new(3, 2, 0).tensor("b", &[8], 0, 32).tensor("a", &[8], 0, 0).header();
        assert_eq!(h.data_len(), 64);
        let err = Raw::new(3, 2, 0).tensor("a", &[16], 0, 0).tensor("b", &[8], 0, 32).err();
        assert_eq!(err, "tensor `b`: bytes 32..64 overlap tensor `a` at 0..64");
        let err = Raw::new(3, 2, 0).tensor("a", &[1], 0, 0).tensor("b", &[1], 0, 0).err();
        assert!(err.contains("overlap"), "{err}");
    }
}
