//! One error type for the core, with enough context (path, line, contig) for a user to act on.

use std::path::PathBuf;

/// Everything that can stop a whole run. Per-record problems (a REF mismatch, a position 0) are not
/// errors of this kind: they become that record's `VRS_Error` value and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a VCF we can read; `line` is 1-based (0 when no line was read yet).
    #[error("line {line}: {message}")]
    InvalidVcf { line: u64, message: String },

    /// An annotated VCF (for ingestion) does not declare all VRS INFO fields.
    #[error("Required VRS annotations are missing -- ensure INFO field has VRS_Allele_IDs, VRS_Starts, VRS_Ends, VRS_States, VRS_Lengths, and VRS_RepeatSubunitLengths")]
    MissingVrsAnnotations,

    /// The sequence source URI or its files cannot be used.
    #[error("sequence source {uri}: {message}")]
    SequenceSource { uri: String, message: String },

    /// A sequence could not be read from a source that opened fine.
    #[error("reading sequence {name} from {path}: {source}")]
    SequenceRead {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Bad options (an unknown output format, zero threads...).
    #[error("{0}")]
    InvalidArgument(String),

    /// Reading the input or writing the output failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The caller asked the run to stop (its progress callback said so).
    #[error("annotation cancelled")]
    Cancelled,

    /// The registry's database failed.
    #[error("storage: {0}")]
    Storage(String),

    /// The allele sink refused a batch; the run stops so that no allele is silently lost.
    #[error("allele sink failed: {0}")]
    Sink(String),

    /// A liftover chain file is missing or cannot be read.
    #[error("{message}")]
    ChainFile { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn source(uri: &str, message: impl Into<String>) -> Self {
        Error::SequenceSource {
            uri: uri.to_string(),
            message: message.into(),
        }
    }
}
