//! The exit codes, in one table (README, "Exit codes"). restic users script against 10,
//! 11, 12 and 130, so those mean the same here.

use repo::error::ErrorKind;

/// Everything went as asked.
pub const OK: i32 = 0;
/// An error (one line on stderr starting with `error:`), including `check` finding damage.
pub const ERROR: i32 = 1;
/// A snapshot was saved, but some files could not be read.
pub const INCOMPLETE: i32 = 3;
/// `scan` found missing or corrupted data.
pub const LOST: i32 = 4;
/// No repository at the location.
pub const NO_REPOSITORY: i32 = 10;
/// Another process holds a conflicting lock.
pub const LOCKED: i32 = 11;
/// No key opens the repository with the password.
pub const WRONG_PASSWORD: i32 = 12;
/// Interrupted (Ctrl-C, SIGTERM): nothing half done was committed.
pub const CANCELLED: i32 = 130;

/// The exit code for a failed command.
pub fn code(e: &anyhow::Error) -> i32 {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<repo::Error>())
        .map(repo::Error::kind);
    match kind {
        Some(ErrorKind::NoRepository) => NO_REPOSITORY,
        Some(ErrorKind::Locked) => LOCKED,
        Some(ErrorKind::WrongPassword) => WRONG_PASSWORD,
        Some(ErrorKind::Cancelled) => CANCELLED,
        _ => ERROR,
    }
}
