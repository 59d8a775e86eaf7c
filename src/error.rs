//! The crate's error type: one enum whose variants carry the coordinates a user
//! needs (which object, which path, which statement) to act on the failure.
//!
//! Bad *data* (a malformed line, a corrupt object) is not an error of the program:
//! it is counted and reported by the ingest summary, never raised from here.

use std::path::PathBuf;

/// Result type used across edgemeter.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop an edgemeter command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line, environment or config file is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A command that reads or maintains a lake was pointed at a place that
    /// holds none.
    #[error(
        "{location} is not an edgemeter lake ({reason}); check --lake or EDGEMETER_LAKE \
         (only `ingest` and `init` start a lake)"
    )]
    NotALake { location: String, reason: String },

    /// The reader of stdout went away (`edgemeter … | head`): not a failure.
    #[error("output closed by its reader")]
    OutputClosed,

    /// Listing a source (S3 prefix or local directory) failed after retries.
    #[error("cannot list {location}: {reason}")]
    List { location: String, reason: String },

    /// Reading one object failed after retries.
    #[error("cannot read {object}: {reason}")]
    Fetch { object: String, reason: String },

    /// An SQS queue of notifications failed after retries.
    #[error("queue {queue}: {reason}")]
    Queue { queue: String, reason: String },

    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The lake's object store failed.
    #[error("lake storage error: {0}")]
    ObjectStore(#[from] object_store::Error),

    /// Encoding or decoding Arrow data failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    /// Reading or writing Parquet failed.
    #[error("parquet error: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    /// Planning or running a query failed.
    #[error("query error: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// A statement that could change the lake or the session was refused.
    #[error("refused: {0}")]
    ReadOnly(String),

    /// A query ran past its time limit.
    #[error(
        "query stopped after {0} s, its time limit (raise it with --timeout-secs or EDGEMETER_QUERY_TIMEOUT_SECS)"
    )]
    QueryTimeout(u64),

    /// A named query does not exist or its parameters are wrong.
    #[error("query {name}: {reason}")]
    Query { name: String, reason: String },

    /// Writing CSV failed.
    #[error("csv error: {0}")]
    Csv(#[from] csv::Error),

    /// Serialising a record failed.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),

    /// The lake holds something this version cannot read.
    #[error("lake is inconsistent: {0}")]
    Lake(String),

    /// A Delta table operation failed.
    #[error("delta table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),

    /// The lake was written by a version of edgemeter from before Delta tables.
    #[error(
        "{0} was written by an earlier edgemeter (before Delta tables); convert it with `edgemeter migrate --lake {0}`"
    )]
    Unconverted(String),

    /// An alert could not be delivered (it is retried by the next check).
    #[error("alert not delivered: {0}")]
    Alert(String),

    /// A Ballista scheduler or executor could not start or stopped.
    #[error("ballista {role}: {reason}")]
    Cluster { role: &'static str, reason: String },

    /// A CPU task panicked.
    #[error(transparent)]
    Cpu(#[from] crate::cpu::TaskFailed),

    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// Names the setting a configuration error is about (`--lookback (or
    /// EDGEMETER_LOOKBACK): bad duration …`); other errors pass unchanged.
    pub(crate) fn in_setting(self, name: &str) -> Self {
        match self {
            Error::Config(message) => Error::Config(format!("{name}: {message}")),
            other => other,
        }
    }

    /// Wraps an `std::io::Error` with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
