//! The library's error type: one enum, corruption kept apart from I/O and user mistakes.

use std::path::PathBuf;

/// Everything that can go wrong inside the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O failure on a named path or object.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, e.g. "reading packs/ab/ab12…".
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes read from the repository do not decode or do not authenticate.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which object, e.g. "pack 3fa2…" or "tree 99c1…".
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No repository exists at the location.
    #[error("no repository at {0} (create one with `repo init`)")]
    NoRepository(String),
    /// A repository already exists where `init` was asked to create one.
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    /// None of the key files could be opened with the given password.
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    /// An object the repository should hold is missing.
    #[error("missing {0}")]
    Missing(String),
    /// The repository's format version is newer than this program understands.
    #[error("repository format version {found} is not supported (this program reads version {supported})")]
    UnsupportedVersion {
        /// Version found on disk.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// A snapshot selector matched nothing or more than one snapshot.
    #[error("{0}")]
    Selection(String),
    /// A path on the user's machine could not be used.
    #[error("{path}: {reason}")]
    BadPath {
        /// The path in question.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// A restore refused to write something because it would be unsafe or wrong.
    #[error("{0}")]
    Refused(String),
    /// A local resource (e.g. the index cache) is in use by another process.
    #[error("{0} is in use by another process")]
    Busy(String),
    /// A backup source (e.g. a database server) failed.
    #[error("{0}")]
    Source(String),
    /// A backup source refused an operation this user has no right to (MongoDB's
    /// Unauthorized): it will not pass by trying again, unlike most [`Error::Source`].
    #[error("{0}")]
    Denied(String),
    /// A database changed while a snapshot read it in a way that leaves what was read
    /// no moment's state; reading again may succeed.
    #[error("{0}")]
    Moved(String),
    /// The repository is locked by another process.
    #[error("repository is locked: {0}")]
    Locked(String),
    /// Invalid argument or configuration value.
    #[error("{0}")]
    Invalid(String),
    /// The storage service refused or failed a request (after retries). `transient`:
    /// the service was unreachable or overloaded (trying later may work); otherwise it
    /// refused (credentials, permissions, a missing bucket).
    #[error("storage: {message}")]
    Storage {
        /// What failed, with the service's reason.
        message: String,
        /// Whether trying again later may succeed.
        transient: bool,
    },
    /// The operation was cancelled (its cancellation token, e.g. Ctrl-C); nothing half
    /// done was committed.
    #[error("cancelled{0}")]
    Cancelled(String),
    /// The operation finished, but not everything could be done (some files unreadable,
    /// some items not restored); the report says what.
    #[error("{0}")]
    Incomplete(String),
    /// A bug or a broken environment (a worker thread panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of failure an error is, for callers that act on it (exit codes, retries,
/// HTTP statuses) rather than print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No repository at the location.
    NoRepository,
    /// A repository exists where one was to be created.
    AlreadyExists,
    /// No key opens the repository with the password.
    WrongPassword,
    /// Another process holds a conflicting lock.
    Locked,
    /// The request itself is wrong (bad option, unknown snapshot, unusable path).
    InvalidInput,
    /// The storage service failed in a way that may pass.
    StorageTransient,
    /// The storage service refused (credentials, permissions, configuration).
    StoragePermanent,
    /// Data in the repository is damaged or missing.
    Damaged,
    /// Refused to act because acting would be unsafe or wrong.
    Refused,
    /// A backup source (a database server) failed.
    Source,
    /// A local I/O failure.
    Io,
    /// Cancelled by the caller.
    Cancelled,
    /// Done in part.
    Partial,
    /// A resource is in use by another process on this machine.
    Busy,
    /// A bug.
    Internal,
}

/// Library result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::BadPath { .. } => ErrorKind::Io,
            Error::Corrupt { .. } | Error::Missing(_) | Error::UnsupportedVersion { .. } => {
                ErrorKind::Damaged
            }
            Error::NoRepository(_) => ErrorKind::NoRepository,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::WrongPassword => ErrorKind::WrongPassword,
            Error::Selection(_) | Error::Invalid(_) => ErrorKind::InvalidInput,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Moved(_) => ErrorKind::Source,
            Error::Source(_) | Error::Denied(_) => ErrorKind::Source,
            Error::Locked(_) => ErrorKind::Locked,
            Error::Storage {
                transient: true, ..
            } => ErrorKind::StorageTransient,
            Error::Storage { .. } => ErrorKind::StoragePermanent,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Incomplete(_) => ErrorKind::Partial,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether a write failed because the disk (or the store's quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.raw_os_error() == Some(28)
                    || source.kind() == std::io::ErrorKind::StorageFull
            }
            Error::Storage { message, .. } => {
                message.contains("No space left") || message.contains("InsufficientStorage")
            }
            _ => false,
        }
    }

    /// A storage failure that may pass.
    pub fn storage(message: impl Into<String>, transient: bool) -> Self {
        Error::Storage {
            message: message.into(),
            transient,
        }
    }

    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a corruption error.
    pub fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Adds context to `std::io::Result`s.
pub trait IoContext<T> {
    /// Maps an I/O error into [`Error::Io`] with a lazily built context string.
    fn ctx(self, f: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, f: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}
