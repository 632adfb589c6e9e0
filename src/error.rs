//! The one error type of the core. `src/py/` maps each variant to a Python exception once.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A record (or a whole document) that cannot be normalized.
    #[error("{source_name}: record {index}{}, {path}: {reason}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Record {
        source_name: String,
        /// The record's position in its source (`source_index`).
        index: u64,
        /// The 1-based line, for NDJSON input.
        line: Option<u64>,
        provider: Option<&'static str>,
        /// What kind of problem it is.
        kind: crate::json::ErrorKind,
        /// JSON path of the offending field, e.g. `$.records[3].createdAt`.
        path: String,
        reason: String,
    },
    /// A source that cannot be read at all (missing file, permission denied).
    #[error("{path}: {message}")]
    Io { path: String, message: String, not_found: bool },
    /// An argument the caller passed is not usable.
    #[error("{0}")]
    InvalidArgument(String),
    /// An input frame lacks a column, or has it with the wrong type.
    #[error("{0}")]
    Column(String),
    /// The call was interrupted (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// A format file (or dict) that cannot be compiled: which file, which key, what is allowed.
    #[error("{origin}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Format { origin: String, key: String, message: String },
    /// A rate card row is unusable (`row` counts the card's data rows from 1; 0 is the card
    /// as a whole), or two rows match one usage row equally well (`usage_row`, from 0).
    #[error("rate card{}: {message}", if *row == 0 { String::new() } else { format!(" row {row}") })]
    RateCard { row: usize, message: String, usage_row: Option<usize> },
}

pub type Result<T> = std::result::Result<T, Error>;
