//! Writing a command's operation-log record once it has ended (see `repo::journal`).

use repo::error::ErrorKind;
use repo::journal::Record;

use super::context::GlobalOpts;
use super::exit;

/// Records how the command went: in the repository it opened, or, when it could not reach
/// it, in this host's journal. Commands that failed before reaching any repository (bad
/// arguments, no repository there, a wrong password) and dry runs leave no record.
pub fn record(g: &GlobalOpts, mut rec: Record, outcome: &anyhow::Result<i32>) {
    let (sink, report, dry_run) = g.journal.take();
    // A dry run changes nothing, so it leaves nothing either.
    if dry_run {
        return;
    }
    let (result, error) = match outcome {
        Ok(exit::OK) => ("ok", None),
        Ok(exit::INCOMPLETE) => ("warnings", None),
        Ok(_) => ("failed", None),
        Err(e) if exit::code(e) == exit::CANCELLED => ("cancelled", Some(format!("{e:#}"))),
        Err(e) => ("failed", Some(format!("{e:#}"))),
    };
    let unreachable = outcome.as_ref().err().is_some_and(|e| {
        e.chain()
            .filter_map(|c| c.downcast_ref::<repo::Error>())
            .any(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::StorageTransient | ErrorKind::StoragePermanent
                )
            })
    });
    if sink.is_none() && !unreachable {
        return;
    }
    rec.finish(result, report, error);
    let (Ok(loc), Some(root)) = (g.location(), repo::plan::state::state_root()) else {
        return;
    };
    if let Err(e) = repo::journal::record(&root, &loc.spec, sink.as_ref(), &rec) {
        eprintln!("warning: the operation log record could not be kept: {e}");
    }
}
