//! One error type for the engine. Every error names the rule that was broken; where the WDK
//! documents a status for the failure, the error carries it so the WDK face can return it.

use std::fmt;

use crate::status::NtStatus;

/// What kind of rule was broken; the binding maps each kind to a Python exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A handle (MDL, NB, NBL) whose object was freed: use after free.
    UseAfterFree,
    /// The object was already freed.
    DoubleFree,
    /// A parameter breaks a documented rule (range, alignment, NULL where not allowed).
    InvalidParameter,
    /// An operation the object's state does not allow (free a parent with live clones, ...).
    InvalidState,
    /// An allocation failed (an allocator handler returned NULL, a fault was injected).
    Resources,
    /// Bytes that are not a well-formed packet, capture or header.
    Malformed,
    /// A Driver-Verifier-style contract violation by the caller.
    Contract,
    /// I/O failed (capture files).
    Io,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// The documented status for this failure, if Windows has one.
    pub status: Option<NtStatus>,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, status: Option<NtStatus>, message: impl Into<String>) -> Self {
        Error {
            kind,
            status,
            message: message.into(),
        }
    }
    pub fn invalid(status: NtStatus, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, Some(status), message)
    }
    pub fn state(status: Option<NtStatus>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, status, message)
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, None, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} (status 0x{s:08X})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
