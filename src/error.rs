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
    /// The repository is locked by another process.
    #[error("repository is locked: {0}")]
    Locked(String),
    /// Invalid argument or configuration value.
    #[error("{0}")]
    Invalid(String),
    /// The storage service refused or failed a request (after retries).
    #[error("storage: {0}")]
    Storage(String),
}

/// Library result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
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
