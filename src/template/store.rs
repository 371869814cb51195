//! The user folders on disk: a `stat` of the template and of each image
//! file it draws decides whether the prepared copy still holds; changed
//! files are re-read, hashed and prepared. Assets named by a request's
//! `src` are read and checked here too, once per version of the file. All
//! file access runs on the blocking pool, never on the async workers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::{Template, TemplateError};
use crate::images::{Image, Images};
use crate::modifications::{Modification, Source};
use crate::render::{RenderError, Renderer};
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
    /// The image files the template draws, as they were when read.
    files: Vec<(PathBuf, Stamp)>,
    /// When the file was last read: a stamp is trusted only once the file
    /// was older than `RACY_WINDOW` at that moment.
    trusted: bool,
    result: Result<Arc<Template>, TemplateError>,
}

impl Entry {
    /// True while neither the template nor a file it draws has changed.
    fn holds(&self, stamp: Stamp) -> bool {
        self.trusted
            && self.stamp == stamp
            && self
                .files
                .iter()
                .all(|(path, was)| std::fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == *was))
    }
}

/// An asset read for a request's `src`, with the stamp it was read at.
struct Asset {
    stamp: Stamp,
    trusted: bool,
    image: Image,
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
    /// Assets read for `src`, by their path: read and decoded once per
    /// version of the file, not once per request.
    assets: RwLock<HashMap<PathBuf, Arc<Asset>>>,
}

impl TemplateStore {
    pub fn new(dir: PathBuf, max_bytes: u64, renderer: Arc<Renderer>) -> TemplateStore {
        TemplateStore {
            dir,
            max_bytes,
            renderer,
            entries: RwLock::default(),
            assets: RwLock::default(),
        }
    }

    /// The ids of `user`'s templates (`<id>.svg` files whose name is a
    /// valid id), sorted, at most `limit` of them; read on the blocking
    /// pool. A user without a folder has none.
    pub async fn ids(self: &Arc<Self>, user: &UserId, limit: usize) -> Vec<BaseId> {
        let folder = self.dir.join(user.as_str());
        let read = move || {
            let mut ids: Vec<BaseId> = std::fs::read_dir(folder)
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name();
                    let id = name.to_str()?.strip_suffix(".svg")?;
                    BaseId::parse(id).ok()
                })
                .collect();
            ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            ids.truncate(limit);
            ids
        };
        tokio::task::spawn_blocking(read).await.unwrap_or_default()
    }

    /// The current version of a template. The `stat`s that decide whether
    /// the prepared copy still holds (the file and every image it draws),
    /// and reading and preparing a changed file, run on the blocking pool.
    pub async fn get(
        self: &Arc<Self>,
        user: &UserId,
        base: &BaseId,
    ) -> Result<Arc<Template>, TemplateError> {
        // The common case, a template prepared already and unchanged, is
        // answered here: a `stat` of a file the kernel has cached takes a
        // microsecond or two, far less than a hand-off to the blocking
        // pool and back (two thread wake-ups, the largest cost of a cache
        // hit). Reading and preparing a file, which can take long, still
        // go to the pool.
        if let Some(template) = self.unchanged(user, base) {
            return template;
        }
        let store = Arc::clone(self);
        let (user, base) = (user.clone(), base.clone());
        tokio::task::spawn_blocking(move || store.get_blocking(user, base))
            .await
            .map_err(|_| TemplateError::Rejected("the template could not be prepared".into()))?
    }

    /// The prepared template of `user`/`base` when its file and every
    /// image it draws are as they were when it was read; `None` when it
    /// must be read (again), or is gone.
    fn unchanged(
        &self,
        user: &UserId,
        base: &BaseId,
    ) -> Option<Result<Arc<Template>, TemplateError>> {
        let key = (user.clone(), base.clone());
        let entry = read(&self.entries).get(&key).cloned()?;
        let meta = std::fs::metadata(self.path_of(user, base)).ok()?;
        entry.holds(Stamp::of(&meta)).then(|| entry.result.clone())
    }

    fn path_of(&self, user: &UserId, base: &BaseId) -> PathBuf {
        self.dir
            .join(user.as_str())
            .join(format!("{}.svg", base.as_str()))
    }

    fn get_blocking(&self, user: UserId, base: BaseId) -> Result<Arc<Template>, TemplateError> {
        let path = self.path_of(&user, &base);
        let meta = std::fs::metadata(&path).map_err(|_| TemplateError::NotFound)?;
        let stamp = Stamp::of(&meta);
        let key = (user, base);
        let known = read(&self.entries).get(&key).cloned();
        if let Some(entry) = &known {
            if entry.holds(stamp) {
                return entry.result.clone();
            }
        }
        let entry = self.load(key.0.as_str(), &path, &meta, known);
        let result = entry.result.clone();
        write(&self.entries).insert(key, Arc::new(entry));
        result
    }

    fn load(
        &self,
        account: &str,
        path: &Path,
        meta: &std::fs::Metadata,
        known: Option<Arc<Entry>>,
    ) -> Entry {
        let stamp = Stamp::of(meta);
        let result = self.read(path, meta).and_then(|source| {
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            let dir = dir.canonicalize().map_err(|_| TemplateError::NotFound)?;
            let template = Template::prepare(account, source, dir, &self.renderer)?;
            // The same version as before keeps its prepared copy, and with
            // it the bases and cache entries made from it.
            match known.as_ref().map(|e| &e.result) {
                Some(Ok(t)) if t.hash == template.hash => Ok(Arc::clone(t)),
                _ => Ok(Arc::new(template)),
            }
        });
        if let Err(TemplateError::Rejected(why)) = &result {
            tracing::warn!(path = %path.display(), %why, "template rejected");
        }
        let files: Vec<(PathBuf, Stamp)> = match &result {
            Ok(t) => t
                .files
                .iter()
                .map(|f| (f.path.clone(), Stamp::of(&f.meta)))
                .collect(),
            Err(_) => Vec::new(),
        };
        let trusted = std::iter::once(meta)
            .chain(result.iter().flat_map(|t| t.files.iter().map(|f| &f.meta)))
            .all(quiet);
        Entry {
            stamp,
            files,
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

    /// The files that `mods`' `src` values name in the user's `assets/`
    /// folder, read and checked (on the blocking pool when there are any).
    /// Their digests go into the cache key, so a replaced asset is a new
    /// image.
    pub async fn assets(
        self: &Arc<Self>,
        template: &Arc<Template>,
        mods: &[Modification],
    ) -> Result<Arc<Images>, RenderError> {
        let names = asset_names(mods);
        if names.is_empty() {
            return Ok(Arc::default());
        }
        let (store, template) = (Arc::clone(self), Arc::clone(template));
        tokio::task::spawn_blocking(move || store.assets_blocking(&template.dir, &names))
            .await
            .map_err(|_| RenderError::Failed("reading assets failed".into()))?
            .map(Arc::new)
    }

    /// `assets` on the calling thread: `dir` is the template's folder.
    pub fn assets_blocking(&self, dir: &Path, names: &[String]) -> Result<Images, RenderError> {
        let mut images = Images::default();
        for name in names {
            let href = format!("assets/{name}");
            let missing = |why: String| RenderError::AssetNotFound(format!("{name} ({why})"));
            let path = dir.join(&href);
            let stamp = std::fs::metadata(&path)
                .map(|m| Stamp::of(&m))
                .map_err(|_| missing("not found in the template's folder".into()))?;
            let known = read(&self.assets).get(&path).cloned();
            let image = match known {
                Some(asset) if asset.trusted && asset.stamp == stamp => asset.image.clone(),
                _ => {
                    let (image, file) = self.renderer.read_image(&href, dir).map_err(missing)?;
                    let asset = Asset {
                        stamp: Stamp::of(&file.meta),
                        trusted: quiet(&file.meta),
                        image: image.clone(),
                    };
                    write(&self.assets).insert(path, Arc::new(asset));
                    image
                }
            };
            images.insert(href, image);
        }
        Ok(images)
    }
}

/// The asset names of `mods`' `src` values, in order, once each.
pub fn asset_names(mods: &[Modification]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for src in mods.iter().filter_map(|m| m.src.as_deref()) {
        if let Ok(Source::Asset(name)) = Source::parse(src) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// True when the file was last changed over `RACY_WINDOW` ago: its stamp
/// can be trusted to change with its content.
fn quiet(meta: &std::fs::Metadata) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= RACY_WINDOW)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
