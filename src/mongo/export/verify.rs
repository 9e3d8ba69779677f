//! Before a MongoDB snapshot is committed: its tree must read back as the collections
//! saved, and what was read must be the state at its cluster time ([`moment`]).

use super::{moment, split_ns, MongoBackup, ROOT};
use crate::error::{Error, Result};
use crate::mongo::layout;

impl MongoBackup {
    /// Checks that what was read is the state at the snapshot's cluster time
    /// ([`moment::confirm`]); a note when that could not be checked.
    pub(super) fn confirm_moment(&self) -> Result<Option<String>> {
        let Some(at) = self.source.cluster_time else {
            return Ok(None);
        };
        let reused = self.reused.lock().unwrap_or_else(|p| p.into_inner());
        let ends = self
            .source
            .read_ends
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let read = self
            .plan
            .iter()
            .filter(|c| c.kind != "view" && !reused.contains_key(&(c.db.clone(), c.name.clone())))
            .map(|c| (c.ns(), ends.get(&c.ns()).copied().flatten()))
            .collect();
        let (dbs, colls) = (&self.scope.dbs, &self.scope.collections);
        let scope: Option<Vec<String>> = (!dbs.is_empty() || !colls.is_empty()).then(|| {
            let mut s = dbs.clone();
            s.extend(
                colls
                    .iter()
                    .filter_map(|ns| split_ns(ns).ok())
                    .map(|(d, _)| d.to_string()),
            );
            s
        });
        moment::confirm(
            &self.source,
            &moment::Window {
                at,
                listed_from: self.source.listed.0,
                listed_until: self.source.listed.1,
                scope: scope.as_deref(),
                read,
                listing_seen: self
                    .listing_seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
                position: self.source.stream_position.as_deref(),
            },
        )
    }

    /// Reads the collections back from the snapshot tree about to be committed and checks
    /// they are exactly the ones saved (names, kinds, document counts): a tree the
    /// restore could not read must never become a snapshot.
    #[cfg(feature = "local-index")]
    pub fn verify_tree(
        &self,
        repo: &crate::repository::Repository,
        root: crate::id::TreeId,
    ) -> Result<()> {
        let fail = |why: String| {
            Err(Error::Source(format!(
                "the snapshot of {} does not read back as the collections saved ({why}); no snapshot was written",
                self.source.redacted_uri
            )))
        };
        let top = repo
            .load_tree(&root)?
            .nodes
            .into_iter()
            .find(|n| n.name == ROOT.as_bytes())
            .and_then(|n| n.subtree);
        let Some(top) = top else {
            return fail("no /mongodb directory".into());
        };
        let mut found: Vec<(String, String, bool, i64)> = layout::read(repo, top)?
            .into_iter()
            .map(|s| {
                let count = s.meta.get_i64("count").unwrap_or(-1);
                (s.db, s.name, s.data.is_some(), count)
            })
            .collect();
        found.sort();
        let mut want: Vec<(String, String, bool)> = self
            .plan
            .iter()
            .map(|c| (c.db.clone(), c.name.clone(), c.kind != "view"))
            .collect();
        want.sort();
        let got: Vec<(String, String, bool)> = found
            .iter()
            .map(|(d, n, h, _)| (d.clone(), n.clone(), *h))
            .collect();
        if got != want {
            return fail(format!(
                "{} collection(s) saved, {} read back",
                want.len(),
                got.len()
            ));
        }
        if let Some((d, n, _, c)) = found.iter().find(|f| f.3 < 0) {
            return fail(format!("{d}.{n} has no document count ({c})"));
        }
        Ok(())
    }
}
