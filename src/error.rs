//! The library's typed error, mapped to `sipreg_result` only at the C boundary.

use std::fmt;

/// Everything that can go wrong in a call into the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A required pointer argument was NULL; the text names it.
    NullArgument(&'static str),
    /// An output buffer was too small; the text says how much is needed.
    BufferTooSmall(String),
    /// A bad URI, option value, header text or UTF-8 string; the text says which.
    InvalidArgument(String),
    /// A REGISTER is already in flight (SIP.js `RequestPendingError`).
    RequestPending,
    /// The registerer was disposed (or its handle freed).
    Terminated,
    /// A socket, connection or name-resolution failure.
    Transport(String),
    /// A bug inside the library (for example a caught panic).
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NullArgument(what) => write!(f, "{what} must not be NULL"),
            Error::BufferTooSmall(m) => write!(f, "buffer too small: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::RequestPending => {
                f.write_str("REGISTER request already in progress, waiting for final response")
            }
            Error::Terminated => f.write_str("registerer terminated (disposed)"),
            Error::Transport(m) => write!(f, "transport error: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}
