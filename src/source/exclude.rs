//! Exclusion rules for the filesystem source: gitignore-style patterns (`--exclude`,
//! `--exclude-file`), marker files (`--exclude-if-present`) and `--one-file-system`.
//!
//! Patterns follow `.gitignore` syntax, matched against absolute paths with `/` as the
//! root: `*.tmp` matches at any depth, `/home/u/cache` only that path, `build/` only
//! directories, and `!keep.tmp` re-includes.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The exclusion settings of a run, as recorded in the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludeSettings {
    /// Gitignore-style patterns, including those read from exclude files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// Directories holding a file of one of these names are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub if_present: Vec<String>,
    /// Whether the walk stayed on the file system of each source path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_file_system: bool,
}

impl ExcludeSettings {
    /// Whether nothing is excluded.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads patterns from a file (one per line; blank lines and `#` comments ignored).
    pub fn add_file(&mut self, file: &Path) -> Result<()> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::io(format!("reading exclude file {}", file.display()), e))?;
        self.patterns.extend(
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
        Ok(())
    }
}

/// Compiled exclusion rules.
pub struct Excluder {
    patterns: Gitignore,
    if_present: Vec<String>,
    one_file_system: bool,
}

impl Excluder {
    /// Compiles `settings`; a malformed pattern is an error naming it.
    pub fn new(settings: &ExcludeSettings) -> Result<Self> {
        let mut b = GitignoreBuilder::new("/");
        for p in &settings.patterns {
            b.add_line(None, p)
                .map_err(|e| Error::Invalid(format!("bad exclude pattern {p:?}: {e}")))?;
        }
        let patterns = b
            .build()
            .map_err(|e| Error::Invalid(format!("bad exclude patterns: {e}")))?;
        Ok(Excluder {
            patterns,
            if_present: settings.if_present.clone(),
            one_file_system: settings.one_file_system,
        })
    }

    /// Whether any exclude pattern is set (`excludes` is then always false, and a caller
    /// can skip building the path to ask).
    pub fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// Whether `path` (absolute) matches an exclude pattern.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        self.patterns.matched(path, is_dir).is_ignore()
    }

    /// Whether directory `dir` holds one of the marker files.
    pub fn marked(&self, dir: &Path) -> bool {
        self.if_present
            .iter()
            .any(|m| std::fs::symlink_metadata(dir.join(m)).is_ok())
    }

    /// Whether a directory on device `dev` may be descended into from a source on `root_dev`.
    pub fn crosses(&self, dev: u64, root_dev: u64) -> bool {
        self.one_file_system && dev != root_dev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excluder {
        let s = ExcludeSettings {
            patterns: p.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Excluder::new(&s).expect("valid patterns")
    }

    #[test]
    fn gitignore_semantics() {
        let e = ex(&["*.tmp", "/home/u/cache", "build/", "!keep.tmp"]);
        assert!(e.excludes(Path::new("/a/b/x.tmp"), false));
        assert!(!e.excludes(Path::new("/a/b/keep.tmp"), false));
        assert!(e.excludes(Path::new("/home/u/cache"), true));
        assert!(!e.excludes(Path::new("/other/home/u/cache"), true));
        assert!(e.excludes(Path::new("/src/build"), true));
        assert!(!e.excludes(Path::new("/src/build"), false));
        assert!(!e.excludes(Path::new("/src/main.rs"), false));
    }
}
