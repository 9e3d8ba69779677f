//! `repo key`: several passwords open one repository, each through its own key file that
//! wraps the same master key. Adding a key never touches the others; the last key can
//! never be removed (the repository would be lost).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::key::{KdfParams, KeyFile};
use crate::ops::context::Ctx;
use crate::repository::{key_path, Repository};
use crate::secret::Password;

/// `key`: list, add, remove, or change the password of the key in use.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyRequest {
    /// List the keys.
    List,
    /// Add a key for another password.
    Add {
        /// The new password.
        password: Password,
    },
    /// Remove a key (not the last one, nor the one in use).
    Remove {
        /// Key id or unique prefix.
        id: String,
    },
    /// Change the password of the key in use.
    Passwd {
        /// The new password.
        password: Password,
    },
}

/// What `key` did.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum KeyReport {
    /// The keys.
    List(Vec<KeyEntry>),
    /// A key was added (and, changing the password, `removed` the one it replaces).
    Changed {
        /// The key added.
        #[serde(skip_serializing_if = "Option::is_none")]
        added: Option<KeyId>,
        /// The key removed.
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<KeyId>,
    },
}

/// Runs a key request.
pub fn run(repo: &Repository, req: &KeyRequest, _ctx: &Ctx) -> Result<KeyReport> {
    let kdf = KdfParams::new_default();
    Ok(match req {
        KeyRequest::List => KeyReport::List(list(repo)?),
        KeyRequest::Add { password } => KeyReport::Changed {
            added: Some(add(repo, password.expose(), kdf)?),
            removed: None,
        },
        KeyRequest::Remove { id } => {
            let id = find(repo, id)?;
            remove(repo, &id, false)?;
            KeyReport::Changed {
                added: None,
                removed: Some(id),
            }
        }
        KeyRequest::Passwd { password } => KeyReport::Changed {
            added: Some(passwd(repo, password.expose(), kdf)?),
            removed: Some(repo.key_id()),
        },
    })
}

/// One key file, as listed.
#[derive(Clone, Debug, Serialize)]
pub struct KeyEntry {
    /// Key file id.
    pub id: KeyId,
    /// Whether this is the key the repository was opened with.
    pub current: bool,
    /// When it was added.
    pub created: String,
    /// Host that added it.
    pub host: String,
    /// User that added it.
    pub user: String,
    /// Argon2id memory cost in KiB.
    pub memory_kib: u32,
    /// Why the key file cannot be used (it can still be removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// Every key file in the repository.
pub fn list(repo: &Repository) -> Result<Vec<KeyEntry>> {
    let mut out = Vec::new();
    for (id, obj) in crate::backend::list_ids::<KeyId>(repo.backend(), "keys/")? {
        let decoded = KeyFile::decode(&repo.backend().get(&obj.path)?)
            .and_then(|kf| kf.kdf.check_bounds().map(|()| kf));
        out.push(match decoded {
            Ok(kf) => KeyEntry {
                id,
                current: id == repo.key_id(),
                created: kf.created,
                host: kf.host,
                user: kf.user,
                memory_kib: kf.kdf.memory_kib,
                damaged: None,
            },
            Err(e) => KeyEntry {
                id,
                current: false,
                created: String::new(),
                host: String::new(),
                user: String::new(),
                memory_kib: 0,
                damaged: Some(e.to_string()),
            },
        });
    }
    out.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(out)
}

/// Adds a key file wrapping the master key under `password`.
pub fn add(repo: &Repository, password: &[u8], kdf: KdfParams) -> Result<KeyId> {
    if password.is_empty() {
        return Err(Error::Invalid("the new password is empty".into()));
    }
    let kf = KeyFile::wrap(repo.key(), password, kdf)?;
    let id = KeyId::random();
    repo.backend().put(&key_path(&id), &kf.encode())?;
    repo.backend().restrict_access()?;
    Ok(id)
}

/// Resolves a key id or unique prefix.
pub fn find(repo: &Repository, sel: &str) -> Result<KeyId> {
    let sel = sel.to_ascii_lowercase();
    let keys = list(repo)?;
    let matches: Vec<&KeyEntry> = keys
        .iter()
        .filter(|k| !sel.is_empty() && k.id.to_hex().starts_with(&sel))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(Error::Selection(format!("no key matches {sel:?}"))),
        _ => Err(Error::Selection(format!(
            "{sel:?} matches several keys; give more digits"
        ))),
    }
}

/// Removes a key file. Refuses the last key, and the key in use unless `allow_current`
/// (as `passwd` does after adding its replacement).
pub fn remove(repo: &Repository, id: &KeyId, allow_current: bool) -> Result<()> {
    let keys = list(repo)?;
    if !keys.iter().any(|k| k.id == *id) {
        return Err(Error::Selection(format!("no key {}", id.short())));
    }
    if keys.len() <= 1 {
        return Err(Error::Refused(
            "refusing to remove the last key: nobody could open the repository again".into(),
        ));
    }
    if *id == repo.key_id() && !allow_current {
        return Err(Error::Refused(format!(
            "key {} is the one you opened the repository with; use `repo key passwd` to \
             change its password, or open with another key to remove it",
            id.short()
        )));
    }
    repo.backend().delete(&key_path(id))
}

/// Replaces the current key's password: adds a key with the new password, then removes
/// the current one (in that order, so a crash leaves both working, never neither).
pub fn passwd(repo: &Repository, new_password: &[u8], kdf: KdfParams) -> Result<KeyId> {
    let id = add(repo, new_password, kdf)?;
    remove(repo, &repo.key_id(), true)?;
    Ok(id)
}
