//! The user folders on disk: one `stat` a request decides whether the
//! prepared copy of a template still holds; changed files are re-read,
//! hashed and prepared on the blocking pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Template, TemplateError};
use crate::render::Renderer;
use crate::request::{BaseId, UserId};

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A file changed within this long of its previous check may change again
/// without its stamp changing (timestamps are coarse), so it is re-read
/// until it has been quiet this long.
const RACY_WINDOW: Duration = Duration::from_secs(2);

struct Entry {
    stamp: Stamp,
    /// When the file was last read: a stamp is trusted only once the file
    /// was older than `RACY_WINDOW` at that moment.
    trusted: bool,
    result: Result<Arc<Template>, TemplateError>,
}

/// The user folders and their prepared templates.
pub struct TemplateStore {
    /// Root folder holding one folder per user.
    dir: PathBuf,
    /// Largest file read.
    max_bytes: u64,
    /// Parser and size checker shared with rendering.
    renderer: Arc<Renderer>,
    /// Prepared templates by user and id, with the stamp they were read at.
    entries: RwLock<HashMap<(UserId, BaseId), Arc<Entry>>>,
}

impl TemplateStore {
    pub fn new(dir: PathBuf, max_bytes: u64, renderer: Arc<Renderer>) -> TemplateStore {
        TemplateStore {
            dir,
            max_bytes,
            renderer,
            entries: RwLock::default(),
        }
    }

    /// The current version of a template. A `stat` decides whether the
    /// prepared copy still holds; reading and preparing a changed file runs
    /// on the blocking pool.
    pub async fn get(
        self: &Arc<Self>,
        user: &UserId,
        base: &BaseId,
    ) -> Result<Arc<Template>, TemplateError> {
        let key = (user.clone(), base.clone());
        let path = self
            .dir
            .join(user.as_str())
            .join(format!("{}.svg", base.as_str()));
        // One stat per request: cheap next to everything else a request
        // does, and what makes edits visible without a restart.
        let meta = std::fs::metadata(&path).map_err(|_| TemplateError::NotFound)?;
        let stamp = Stamp::of(&meta);
        let known = self.read_entries().get(&key).cloned();
        if let Some(entry) = &known {
            if entry.trusted && entry.stamp == stamp {
                return entry.result.clone();
            }
        }
        let store = Arc::clone(self);
        let entry = tokio::task::spawn_blocking(move || store.load(&path, &meta, known))
            .await
            .map_err(|_| TemplateError::Rejected("the template could not be prepared".into()))?;
        let result = entry.result.clone();
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::new(entry));
        result
    }

    fn read_entries(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<(UserId, BaseId), Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, path: &Path, meta: &std::fs::Metadata, known: Option<Arc<Entry>>) -> Entry {
        let stamp = Stamp::of(meta);
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        let trusted = age >= RACY_WINDOW;
        let result = self.read(path, meta).and_then(|source| {
            let hash: [u8; 32] = Sha256::digest(source.as_bytes()).into();
            match known.as_ref().map(|e| &e.result) {
                Some(Ok(t)) if t.hash == hash => Ok(Arc::clone(t)),
                _ => {
                    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                    let dir = dir.canonicalize().map_err(|_| TemplateError::NotFound)?;
                    Template::prepare(source, dir, &self.renderer).map(Arc::new)
                }
            }
        });
        if let Err(TemplateError::Rejected(why)) = &result {
            tracing::warn!(path = %path.display(), %why, "template rejected");
        }
        Entry {
            stamp,
            trusted,
            result,
        }
    }

    fn read(&self, path: &Path, meta: &std::fs::Metadata) -> Result<String, TemplateError> {
        if !meta.is_file() {
            return Err(TemplateError::Rejected("not a regular file".into()));
        }
        // A symlink may point anywhere; only files inside the user's own
        // folder are read.
        let user_dir = path.parent().and_then(|d| d.canonicalize().ok());
        let real = path.canonicalize().ok();
        match (user_dir, real) {
            (Some(dir), Some(real)) if real.starts_with(&dir) => {}
            _ => {
                return Err(TemplateError::Rejected(
                    "the file lies outside the user's folder".into(),
                ))
            }
        }
        if meta.len() > self.max_bytes {
            return Err(TemplateError::Rejected(format!(
                "the file has {} bytes (limit {})",
                meta.len(),
                self.max_bytes
            )));
        }
        let bytes = std::fs::read(path).map_err(|_| TemplateError::NotFound)?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(TemplateError::Rejected(
                "the file grew over the size limit".into(),
            ));
        }
        String::from_utf8(bytes)
            .map_err(|_| TemplateError::Rejected("the file is not UTF-8".into()))
    }
}
