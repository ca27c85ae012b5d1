//! One error type for the whole crate. Every message is a sentence a person can act on:
//! what was expected, what was found, and (where it helps) what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),

    #[error(transparent)]
    Scheduler(#[from] crate::schedulers::SchedulerError),

    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not valid JSON for {what}: {source}")]
    Json {
        path: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("the tokenizer could not be used: {0}")]
    Tokenizer(String),

    /// A weight the model needs is not in the file, or has the wrong shape or type.
    #[error("{0}")]
    Weights(String),

    /// A model directory, manifest or config that does not describe a model we can run.
    #[error("{0}")]
    Model(String),

    /// Settings a person chose that cannot run (zero steps, NaN guidance, a huge prompt, ...).
    #[error("{0}")]
    Settings(String),

    /// The GPU: no adapter, a refused device, a lost device, a kernel that cannot launch.
    #[error("{0}")]
    Device(String),

    /// A file of another length than model.json lists: cut off, or another file.
    #[error("{0}")]
    SizeMismatch(String),

    /// A file whose SHA-256 is not the one model.json lists: corrupt, or from another model version.
    #[error("{0}")]
    HashMismatch(String),

    #[error("generation was cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

/// A setting's check: `Err(Error::Settings(sentence()))` unless `ok`.
pub fn ensure_setting(ok: bool, sentence: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Settings(sentence()))
    }
}

/// A setting's range check: `Err(Error::Settings(sentence(value)))` unless `range` holds `value` (NaN never does).
pub fn ensure_in<T: PartialOrd + Copy>(
    value: T,
    range: std::ops::RangeInclusive<T>,
    sentence: impl FnOnce(T) -> String,
) -> Result<()> {
    ensure_setting(range.contains(&value), || sentence(value))
}

impl Error {
    /// Every [`Error::code`], for the page (www/js/protocol.js's generated block: tests/contract.rs).
    pub const CODES: [&'static str; 13] = [
        "gguf",
        "scheduler",
        "tensor",
        "io",
        "json",
        "tokenizer",
        "weights",
        "model",
        "bad_input",
        "device",
        "size_mismatch",
        "hash_mismatch",
        "cancelled",
    ];

    /// What kind of error this is, in a word that stays the same when the message is reworded: the page
    /// decides by it (refetch a file that does not verify, fall back to the CPU when the GPU fails).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Gguf(_) => "gguf",
            Error::Scheduler(_) => "scheduler",
            Error::Tensor(_) => "tensor",
            Error::Io { .. } => "io",
            Error::Json { .. } => "json",
            Error::Tokenizer(_) => "tokenizer",
            Error::Weights(_) => "weights",
            Error::Model(_) => "model",
            Error::Settings(_) => "bad_input",
            Error::Device(_) => "device",
            Error::SizeMismatch(_) => "size_mismatch",
            Error::HashMismatch(_) => "hash_mismatch",
            Error::Cancelled => "cancelled",
        }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}
