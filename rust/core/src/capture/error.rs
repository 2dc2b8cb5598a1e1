//! The capture module's error: it keeps the record index and the byte offset as fields (so a
//! replay tool can resume, skip or report them) and in its message (so a person sees where a
//! file is damaged without a hex editor). It converts into [`crate::Error`] for callers that
//! only want the engine-wide type.

use std::fmt;

use crate::error::{Error, ErrorKind};
use crate::status::{STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED};

/// What went wrong, coarsely: decides the [`ErrorKind`] the error converts into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The bytes are not a well-formed capture (damaged, truncated, unknown magic).
    Malformed,
    /// Reading or writing failed at the operating-system level.
    Io,
    /// A well-formed capture uses something this reader does not handle (a pcapng time
    /// resolution finer than 2^-63 s, a pcap major version other than 2, ...).
    Unsupported,
    /// The caller asked a writer for something the format cannot hold exactly (a
    /// sub-microsecond timestamp in a microsecond pcap, a second link type in a pcap, ...).
    InvalidInput,
}

/// A capture read or write failure, located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureError {
    pub kind: CaptureErrorKind,
    /// Index (0-based, over packet records only) of the record the failure belongs to, or of
    /// the record that would have come next when the failure lies in a non-packet block or in
    /// the file header. Every record with a smaller index was delivered intact.
    pub record: u64,
    /// Byte offset from the start of the stream of the header of the damaged record or block
    /// (for I/O errors: where the failed read or write began).
    pub offset: u64,
    /// The full human-readable message, naming the record, the offset and what is wrong.
    pub message: String,
}

impl CaptureError {
    pub(crate) fn new(
        kind: CaptureErrorKind,
        record: u64,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        CaptureError {
            kind,
            record,
            offset,
            message: message.into(),
        }
    }

    /// A damaged record: "`{what}` record `{record}` at byte offset `{offset}`: `{detail}`".
    pub(crate) fn malformed_record(what: &str, record: u64, offset: u64, detail: &str) -> Self {
        let sep = if what.is_empty() { "" } else { " " };
        let message = format!("{what}{sep}record {record} at byte offset {offset}: {detail}");
        Self::new(CaptureErrorKind::Malformed, record, offset, message)
    }

    /// A damaged non-packet structure (file header, pcapng block) located before `record`.
    pub(crate) fn malformed_at(what: &str, record: u64, offset: u64, detail: &str) -> Self {
        let message = format!("{what} at byte offset {offset} (before record {record}): {detail}");
        Self::new(CaptureErrorKind::Malformed, record, offset, message)
    }

    pub(crate) fn unsupported_at(what: &str, record: u64, offset: u64, detail: &str) -> Self {
        let message = format!("{what} at byte offset {offset} (before record {record}): {detail}");
        Self::new(CaptureErrorKind::Unsupported, record, offset, message)
    }

    pub(crate) fn io(record: u64, offset: u64, doing: &str, err: &std::io::Error) -> Self {
        let message = format!("I/O error {doing} record {record} at byte offset {offset}: {err}");
        Self::new(CaptureErrorKind::Io, record, offset, message)
    }

    pub(crate) fn invalid_write(record: u64, offset: u64, detail: &str) -> Self {
        let message = format!("cannot write record {record} at byte offset {offset}: {detail}");
        Self::new(CaptureErrorKind::InvalidInput, record, offset, message)
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CaptureError {}

impl From<CaptureError> for Error {
    fn from(e: CaptureError) -> Self {
        let (kind, status) = match e.kind {
            CaptureErrorKind::Malformed => (ErrorKind::Malformed, None),
            CaptureErrorKind::Io => (ErrorKind::Io, None),
            CaptureErrorKind::Unsupported => (ErrorKind::Malformed, Some(STATUS_NOT_SUPPORTED)),
            CaptureErrorKind::InvalidInput => {
                (ErrorKind::InvalidParameter, Some(STATUS_INVALID_PARAMETER))
            }
        };
        Error::new(kind, status, e.message)
    }
}

/// Result of every capture operation.
pub type CaptureResult<T> = std::result::Result<T, CaptureError>;
