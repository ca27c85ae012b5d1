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

    #[error("generation was cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}
