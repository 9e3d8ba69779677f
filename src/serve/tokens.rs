//! API tokens: 32 random bytes shown once (`repo_` + 64 hex digits), stored only as their
//! SHA-256 with a name and a role in `<state root>/tokens.json` (mode 0600, replaced
//! atomically). The service looks at the file on every request (a `stat`; it reads it
//! again only when its inode, size or modification time changed), so `repo token revoke`
//! takes effect at once without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a token may do; each role may do what the ones before it may.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: snapshots, jobs, history, previews, metrics.
    Viewer,
    /// Also run backups, verifications and restores, and cancel jobs.
    Operator,
    /// Also forget snapshots and manage tokens.
    Admin,
}

impl Role {
    /// As written on the command line and in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::Invalid(format!(
                "role {s:?}: want viewer, operator or admin"
            ))),
        }
    }
}

/// A token as listed (never the token itself).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created: DateTime<Utc>,
}

/// A token as stored: its SHA-256, hex.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    info: TokenInfo,
    hash: String,
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    tokens: Vec<Stored>,
}

/// The token file.
#[derive(Clone)]
pub struct TokenStore {
    path: PathBuf,
    /// The file as last read, with what identified that version of it.
    cache: Arc<Mutex<Option<Cached>>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The file as read, and which version of it.
type Cached = (Stamp, Arc<File>);

/// Identifies one version of the file: it is replaced by rename, so a new inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal without leaking where they differ through timing.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl TokenStore {
    /// The file at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            cache: Arc::default(),
        }
    }

    /// `<state root>/tokens.json`.
    pub fn default_path() -> Option<PathBuf> {
        crate::plan::state::state_root().map(|d| d.join("tokens.json"))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<File> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(Error::io(format!("reading {}", self.path.display()), e)),
        }
    }

    fn save(&self, f: &File) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let tmp = dir.join(format!(".tokens.json.tmp-{}", std::process::id()));
        let body = serde_json::to_vec_pretty(f)
            .map_err(|e| Error::Internal(format!("encoding tokens: {e}")))?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    /// Every token (without hashes).
    pub fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self.load()?.tokens.into_iter().map(|t| t.info).collect())
    }

    /// Creates a token called `name`; returns it (the only time it is seen).
    pub fn create(&self, name: &str, role: Role) -> Result<(TokenInfo, String)> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(Error::Invalid(format!(
                "token name {name:?}: use letters, digits, - _ . @"
            )));
        }
        let mut f = self.load()?;
        if f.tokens.iter().any(|t| t.info.name == name) {
            return Err(Error::Invalid(format!(
                "a token called {name:?} exists (revoke it first)"
            )));
        }
        let token = format!("repo_{}", hex::encode(rand::random::<[u8; 32]>()));
        let info = TokenInfo {
            name: name.to_string(),
            role,
            created: Utc::now(),
        };
        f.tokens.push(Stored {
            info: info.clone(),
            hash: digest(&token),
        });
        self.save(&f)?;
        Ok((info, token))
    }

    /// Removes the token called `name`; whether there was one.
    pub fn revoke(&self, name: &str) -> Result<bool> {
        let mut f = self.load()?;
        let before = f.tokens.len();
        f.tokens.retain(|t| t.info.name != name);
        if f.tokens.len() == before {
            return Ok(false);
        }
        self.save(&f)?;
        Ok(true)
    }

    /// The file, read again only when it changed since the last call.
    fn current(&self) -> Result<Arc<File>> {
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::default()),
            Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, f)) = cache.as_ref() {
            if *s == now {
                return Ok(f.clone());
            }
        }
        let f = Arc::new(self.load()?);
        *cache = Some((now, f.clone()));
        Ok(f)
    }

    /// The token called `name`, if there is one (a session's token still standing).
    pub fn lookup(&self, name: &str) -> Result<Option<TokenInfo>> {
        Ok(self
            .current()?
            .tokens
            .iter()
            .find(|t| t.info.name == name)
            .map(|t| t.info.clone()))
    }

    /// The token `token` is, if it is one.
    pub fn verify(&self, token: &str) -> Result<Option<TokenInfo>> {
        let d = digest(token);
        Ok(self
            .current()?
            .tokens
            .iter()
            .find(|t| same(&t.hash, &d))
            .map(|t| t.info.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::at(dir.path().join("tokens.json"));
        let (info, tok) = s.create("ci", Role::Operator).unwrap();
        assert_eq!(info.role, Role::Operator);
        assert!(s.create("ci", Role::Admin).is_err(), "names are unique");
        assert!(s.create("bad name", Role::Admin).is_err());
        assert_eq!(s.verify(&tok).unwrap().unwrap().name, "ci");
        assert!(s.verify("repo_00").unwrap().is_none());
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(!text.contains(&tok), "only the hash is stored");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        assert!(s.revoke("ci").unwrap());
        assert!(!s.revoke("ci").unwrap());
        assert!(s.verify(&tok).unwrap().is_none());
    }

    #[test]
    fn another_process_revoking_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let service = TokenStore::at(path.clone());
        let (_, a) = service.create("a", Role::Viewer).unwrap();
        assert!(service.verify(&a).unwrap().is_some());
        // The CLI is another store on the same file.
        let cli = TokenStore::at(path);
        let (_, b) = cli.create("b", Role::Admin).unwrap();
        assert_eq!(service.verify(&b).unwrap().unwrap().role, Role::Admin);
        assert!(cli.revoke("a").unwrap());
        assert!(
            service.verify(&a).unwrap().is_none(),
            "revocation is immediate"
        );
        std::fs::remove_file(service.path()).unwrap();
        assert!(service.verify(&b).unwrap().is_none());
    }
}
