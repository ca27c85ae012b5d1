//! GGUF, the single-file weight format of ggml and llama.cpp.
//!
//! A GGUF v3 file is little-endian and laid out as
//!
//! ```text
//! "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//! metadata_kv_count x (string key, u32 value type, value)
//! tensor_count      x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset)
//! zero padding up to `general.alignment` (32 unless the metadata says otherwise)
//! tensor data; each tensor starts at data section start + its offset
//! ```
//!
//! where a string is a u64 byte length followed by UTF-8 bytes, and `dims` is
//! in ggml order (innermost first), the reverse of PyTorch's shape. The header
//! is self-describing, so one file carries the weights, the model config and
//! the tokenizer.
//!
//! In the browser the file arrives over `fetch` in chunks. [`parse_header`]
//! is therefore incremental: given any prefix of the file it either returns
//! the header or says how many bytes it needs before it can get further, so
//! the app can validate the file, show what it holds and size its buffers
//! before the (large) tensor data has arrived. The header is untrusted input:
//! every count is capped (see the `MAX_*` constants), every size is computed
//! with checked arithmetic and nothing is allocated for a count before the
//! bytes behind it exist, so memory stays proportional to the bytes received.
//! Tensors must be named uniquely in under 64 bytes, have 1 to 4 dimensions,
//! sit at aligned offsets and not overlap.
//!
//! Only the tensor types this crate uses are supported: F32, F16, Q8_0 and
//! Q4_0, with quantizers that match ggml's reference ones bit for bit.

mod file;
mod header;
mod quant;
mod stream;
mod writer;

pub use file::{GgufFile, TensorView};
pub use header::{
    parse_header, GgufHeader, HeaderStatus, MetadataArray, MetadataValue, TensorInfo, DEFAULT_ALIGNMENT, MAX_ALIGNMENT,
    MAX_ARRAY_LEN, MAX_DIMS, MAX_METADATA, MAX_NAME_LEN, MAX_STRING_LEN, MAX_TENSORS,
};
pub use quant::{dequantize, quantize, GgmlType, QK};
pub use stream::HeaderStream;
pub use writer::{GgufWriter, QUANTIZATION_VERSION, QUANTIZATION_VERSION_KEY};

/// Everything that can go wrong reading or writing GGUF. Each message says
/// what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (starts with b\"{found}\"; expected b\"GGUF\")")]
    BadMagic { found: String },
    #[error("unsupported GGUF version {found}; expected 3{note}")]
    Version { found: u32, note: &'static str },
    #[error("{what} is {found}; the limit is {max}")]
    Limit { what: String, found: u64, max: u64 },
    #[error("{what} is not valid UTF-8")]
    NotUtf8 { what: String },
    #[error("metadata `{key}`: {problem}")]
    Metadata { key: String, problem: String },
    #[error("general.alignment must be a u32 power of two from 1 to {MAX_ALIGNMENT}; found {found}")]
    Alignment { found: String },
    #[error("tensor name `{name}` is {len} bytes; GGUF names must be under {MAX_NAME_LEN} bytes")]
    NameTooLong { name: String, len: usize },
    #[error("tensor `{name}`: {problem}")]
    Tensor { name: String, problem: String },
    #[error("unknown ggml type id {0}; supported ids are 0 (F32), 1 (F16), 2 (Q4_0) and 8 (Q8_0)")]
    UnknownType(u32),
    #[error("{dtype} packs {QK} values per block, so the row length must be a multiple of {QK}; found {len}")]
    BlockSize { dtype: GgmlType, len: usize },
    #[error("{n_elements} {dtype} values take {expected} bytes; found {found}")]
    DataSize { dtype: GgmlType, n_elements: usize, expected: u128, found: usize },
    #[error("truncated GGUF file: {what} needs {expected} bytes; found {found}")]
    Truncated { what: &'static str, expected: u64, found: u64 },
    #[error("writing GGUF: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, GgufError>;

/// Shortens an untrusted string for an error message.
fn shorten(s: &str) -> String {
    const KEEP: usize = 80;
    match s.char_indices().nth(KEEP) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}
