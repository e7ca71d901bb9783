//! The content-addressed object directory: `objects/ab/cdef...` named by the SHA-256 of the bytes.
//! In a team project the objects live in an S3-compatible bucket ([`Remote`]) and this
//! directory is this machine's cache of them: bounded, least recently used evicted first.

use crate::StoreError;
use crate::remote::Remote;
use gyre_core::ContentHash;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
pub struct Objects {
    dir: PathBuf,
    tmp: PathBuf,
    /// Files derived from objects (`derived/<kind>/<object id>`): see [`Objects::put_derived`].
    derived: PathBuf,
    /// The most bytes one kind of derived file may take; past it the least recently used go.
    derived_max: u64,
    /// Where the objects live when this directory is a cache of them: the team store's
    /// bucket, or a team server.
    remote: Option<Arc<Upstream>>,
    /// The bytes the cache holds, counted once when it first grows in this process.
    cached_bytes: Arc<std::sync::Mutex<Option<u64>>>,
}

/// What a cache of objects is a cache of.
#[derive(Debug)]
pub(crate) enum Upstream {
    Bucket(Box<Remote>),
    Server(Arc<crate::client::ServerClient>),
}

impl Upstream {
    fn contains(&self, id: &ContentHash) -> Result<bool, StoreError> {
        match self {
            Upstream::Bucket(r) => r.contains(id),
            Upstream::Server(s) => s.contains(id),
        }
    }

    fn put(&self, id: &ContentHash, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Upstream::Bucket(r) => r.put(id, bytes),
            Upstream::Server(s) => s.put(id, bytes),
        }
    }

    fn download(&self, id: &ContentHash, file: &mut fs::File) -> Result<bool, StoreError> {
        match self {
            Upstream::Bucket(r) => r.download(id, file),
            Upstream::Server(s) => s.download(id, file),
        }
    }
}

/// The most bytes each kind of derived file takes by default (a decoded table is about 8x its
/// stored Parquet: a few GiB keep the decoded forms of tables of tens of millions of rows).
const DERIVED_MAX_BYTES: u64 = 4 << 30;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file's bytes, mapped into memory: its pages are the page cache's, read as they are
/// touched, where reading it copied them into fresh memory (for a 4.7 MB table, a fifth of an
/// edit). An empty file, which cannot be mapped, is read.
fn mapped(mut file: fs::File) -> std::io::Result<bytes::Bytes> {
    // SAFETY: a mapping is undefined behaviour if its file changes while mapped. gyre never
    // writes an object or a derived file in place: both are written to a temporary file and
    // renamed over any old one (a new file; a mapped one stays as it was), and removing one
    // unlinks it (the mapped data lives until unmapped). Only a hand edit of a file under
    // `.gyre` while a command reads it could break this.
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(map) => Ok(bytes::Bytes::from_owner(map)),
        Err(_) => {
            use std::io::Read;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(bytes.into())
        }
    }
}

impl Objects {
    pub(crate) fn new(state_dir: &Path) -> Self {
        Objects {
            dir: state_dir.join("objects"),
            tmp: state_dir.join("tmp"),
            derived: state_dir.join("derived"),
            derived_max: DERIVED_MAX_BYTES,
            remote: None,
            cached_bytes: Arc::default(),
        }
    }

    /// The objects of a team project: `remote` holds them, this directory caches them.
    pub(crate) fn with_remote(state_dir: &Path, remote: Remote) -> Self {
        Objects {
            remote: Some(Arc::new(Upstream::Bucket(Box::new(remote)))),
            ..Objects::new(state_dir)
        }
    }

    /// The objects of a project whose store is a team server: this directory caches them.
    pub(crate) fn with_server(state_dir: &Path, server: Arc<crate::client::ServerClient>) -> Self {
        Objects {
            remote: Some(Arc::new(Upstream::Server(server))),
            ..Objects::new(state_dir)
        }
    }

    /// The bucket behind a team project's objects.
    pub(crate) fn remote(&self) -> Option<&Remote> {
        match self.remote.as_deref() {
            Some(Upstream::Bucket(r)) => Some(r),
            _ => None,
        }
    }

    /// Every object id stored (the bucket's for a team project), for `gyre store copy`.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        match self.remote.as_deref() {
            Some(Upstream::Bucket(r)) => return r.list(),
            Some(Upstream::Server(s)) => {
                return Err(StoreError::Invalid(format!(
                    "the objects of a project on a team server ({}) are listed by the server",
                    s.url()
                )));
            }
            None => {}
        }
        let mut out = Vec::new();
        let Ok(fans) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for fan in fans.flatten() {
            let fan_name = fan.file_name().to_string_lossy().to_string();
            for e in fs::read_dir(fan.path())
                .map_err(|e| StoreError::io(fan.path(), e))?
                .flatten()
            {
                let id = format!("{fan_name}{}", e.file_name().to_string_lossy());
                if ContentHash::parse(&id).is_some() {
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Counts a file newly cached from the bucket and, past the cache's bound, removes the
    /// least recently used cached objects (reads mark them used). Only a team project's cache
    /// is bounded: a local project's directory is its objects.
    fn cached(&self, len: u64, keep: &Path) {
        if self.remote.is_none() {
            return;
        }
        let mut total = self.cached_bytes.lock().unwrap_or_else(|e| e.into_inner());
        let now = match *total {
            Some(t) => t + len,
            // The first growth in this process counts what earlier ones left.
            None => self.cache_files().iter().map(|f| f.1).sum(),
        };
        *total = Some(now);
        if now <= self.derived_max {
            return;
        }
        let mut files = self.cache_files();
        files.sort();
        let mut left: u64 = files.iter().map(|f| f.1).sum();
        for (_, len, path) in files {
            if left <= self.derived_max {
                break;
            }
            if path != keep && fs::remove_file(&path).is_ok() {
                left -= len;
            }
        }
        *total = Some(left);
    }

    fn cache_files(&self) -> Vec<(std::time::SystemTime, u64, PathBuf)> {
        let mut out = Vec::new();
        for fan in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for e in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                if let Ok(m) = e.metadata()
                    && m.is_file()
                    && let Ok(t) = m.modified()
                {
                    out.push((t, m.len(), e.path()));
                }
            }
        }
        out
    }

    /// Makes sure the object is in the local directory: a team project downloads it from its
    /// bucket (checked against its id) into the cache. Errors with `MissingObject` when
    /// neither has it.
    fn fetch(&self, id: &ContentHash) -> Result<PathBuf, StoreError> {
        let p = self.path(id);
        if p.is_file() {
            if self.remote.is_some() {
                // Used now: eviction keeps the most recently used.
                let _ =
                    fs::File::open(&p).and_then(|f| f.set_modified(std::time::SystemTime::now()));
            }
            return Ok(p);
        }
        let Some(remote) = &self.remote else {
            return Err(StoreError::MissingObject { id: id.to_string() });
        };
        let tmp = self.temp_path();
        let mut file = fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let got = remote.download(id, &mut file).and_then(|found| {
            if !found {
                return Err(StoreError::MissingObject { id: id.to_string() });
            }
            let parent = p.parent().expect("objects live in a fan-out directory");
            fs::create_dir_all(parent)
                .and_then(|_| fs::rename(&tmp, &p))
                .map_err(|e| StoreError::io(&p, e))
        });
        if let Err(e) = got {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.cached(fs::metadata(&p).map(|m| m.len()).unwrap_or(0), &p);
        Ok(p)
    }

    /// Removes the least recently used files of a kind of derived file until the kind takes at
    /// most `derived_max` bytes, keeping `keep` (the one just written). A read marks a file
    /// used ([`Objects::get_derived`] sets its modification time). Failures are ignored: this
    /// is a cache's housekeeping, and a file removed while another process reads it stays
    /// readable by that process until it is done.
    fn evict_derived(&self, kind: &str, keep: &Path) {
        let Ok(dir) = fs::read_dir(self.derived.join(kind)) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                if !m.is_file() {
                    return None;
                }
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.derived_max {
            return;
        }
        files.sort();
        for (_, len, path) in files {
            if total <= self.derived_max {
                break;
            }
            if path != keep && fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }

    fn derived_path(&self, kind: &str, of: &ContentHash) -> PathBuf {
        self.derived.join(kind).join(of.as_str())
    }

    /// Keeps a file derived from object `of` (its decoded form, say), replacing any: a cache
    /// beside the object, not an object itself. It is named by the object it comes from, so
    /// storing it costs no hash of its own bytes, and it is written without a sync (a rename
    /// makes it appear whole, but a crash may leave it empty or torn): whoever reads it must
    /// check its content and treat a bad file as absent ([`Objects::remove_derived`]).
    pub fn put_derived(
        &self,
        kind: &str,
        of: &ContentHash,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let dest = self.derived_path(kind, of);
        let tmp = self.temp_path();
        let write = || -> std::io::Result<()> {
            fs::write(&tmp, bytes)?;
            fs::create_dir_all(
                dest.parent()
                    .expect("derived files live in a kind's directory"),
            )?;
            fs::rename(&tmp, &dest)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io(&dest, e)
        })?;
        self.evict_derived(kind, &dest);
        Ok(())
    }

    /// The file derived from object `of`, if one is kept (unchecked: see `put_derived`),
    /// mapped into memory ([`mapped`]).
    pub fn get_derived(&self, kind: &str, of: &ContentHash) -> Option<bytes::Bytes> {
        let file = fs::File::open(self.derived_path(kind, of)).ok()?;
        // Used now: the eviction in `put_derived` keeps the most recently used files.
        let _ = file.set_modified(std::time::SystemTime::now());
        mapped(file).ok()
    }

    /// Forgets a derived file (one found damaged).
    pub fn remove_derived(&self, kind: &str, of: &ContentHash) {
        let _ = fs::remove_file(self.derived_path(kind, of));
    }

    pub fn path(&self, id: &ContentHash) -> PathBuf {
        let s = id.as_str();
        self.dir.join(&s[..2]).join(&s[2..])
    }

    /// Whether the object is stored (in the bucket, for a team project; an unreachable bucket
    /// counts as not).
    pub fn contains(&self, id: &ContentHash) -> bool {
        self.path(id).is_file()
            || self
                .remote
                .as_ref()
                .is_some_and(|r| r.contains(id).unwrap_or(false))
    }

    /// Stores bytes and returns their address; writes nothing when the object already exists
    /// with the right length. A file of another length at the address (truncated, or damaged
    /// into another length) is replaced, so storing the bytes again heals it; contents are not
    /// compared, so damage that keeps the length stays.
    ///
    /// In a team project the bucket has the object before this returns (metadata recorded
    /// after a put never points at a missing object), and the cache keeps a copy: a cached
    /// object is one the bucket has, so a put of one costs no request.
    pub fn put(&self, bytes: &[u8]) -> Result<ContentHash, StoreError> {
        let id = ContentHash::of(bytes);
        let dest = self.path(&id);
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
            return Ok(id);
        }
        if let Some(remote) = &self.remote
            && !remote.contains(&id)?
        {
            remote.put(&id, bytes)?;
        }
        let tmp = self.temp_path();
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            let parent = dest.parent().expect("objects live in a fan-out directory");
            fs::create_dir_all(parent)?;
            fs::rename(&tmp, &dest)?;
            // Make the rename itself durable.
            fs::File::open(parent)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io(&dest, e)
        })?;
        self.cached(bytes.len() as u64, &dest);
        Ok(id)
    }

    /// An object's bytes, mapped into memory rather than read (see [`mapped`]).
    pub fn get_mapped(&self, id: &ContentHash) -> Result<bytes::Bytes, StoreError> {
        let p = self.fetch(id)?;
        fs::File::open(&p)
            .and_then(mapped)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StoreError::MissingObject { id: id.to_string() },
                _ => StoreError::io(&p, e),
            })
    }

    pub fn get(&self, id: &ContentHash) -> Result<Vec<u8>, StoreError> {
        let p = self.fetch(id)?;
        fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::MissingObject { id: id.to_string() },
            _ => StoreError::io(p, e),
        })
    }

    /// A fresh temporary path in `.gyre/tmp`, tagged with this process's id so that a later
    /// process can tell an abandoned file (its writer died) from one being written now.
    pub fn temp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{}-{n}.tmp", std::process::id()))
    }

    /// Removes temporary files (and directories: a command learner's working directory) whose
    /// writing process no longer runs (a crash or `kill -9`).
    pub(crate) fn sweep_abandoned(&self) {
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = match pid {
                Some(pid) if pid == std::process::id() => true,
                Some(pid) => process_alive(pid),
                None => false,
            };
            if !alive {
                let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(e.path())
                } else {
                    fs::remove_file(e.path())
                };
            }
        }
    }
}

fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.is_dir() {
        proc.join(pid.to_string()).exists()
    } else {
        // Without /proc we cannot tell; keep the file rather than risk a live writer's data.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storing_bytes_again_heals_a_damaged_object() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let objects = Objects::new(dir.path());
        let bytes = b"a slice search, say".to_vec();
        let id = objects.put(&bytes).unwrap();
        let path = objects.path(&id);
        fs::write(&path, b"trunc").unwrap();
        assert_eq!(objects.put(&bytes).unwrap(), id);
        assert_eq!(objects.get(&id).unwrap(), bytes);
        fs::remove_file(&path).unwrap();
        objects.put(&bytes).unwrap();
        assert_eq!(objects.get(&id).unwrap(), bytes);
        // An intact object is left as it is: the same file, not a new one renamed over it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let before = fs::metadata(&path).unwrap().ino();
            objects.put(&bytes).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().ino(), before);
        }
    }

    #[test]
    fn mapped_objects_read_as_stored_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let objects = Objects::new(dir.path());
        let id = objects.put(b"predictions, say").unwrap();
        assert_eq!(objects.get_mapped(&id).unwrap(), &b"predictions, say"[..]);
        let empty = objects.put(b"").unwrap();
        assert!(objects.get_mapped(&empty).unwrap().is_empty());
        let absent = ContentHash::of(b"never stored");
        assert!(matches!(
            objects.get_mapped(&absent),
            Err(StoreError::MissingObject { id }) if id == absent.to_string()
        ));
    }

    #[test]
    fn derived_files_are_kept_replaced_and_forgotten_by_their_object() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let objects = Objects::new(dir.path());
        let (a, b) = (ContentHash::of(b"one table"), ContentHash::of(b"another"));
        assert_eq!(objects.get_derived("decoded", &a), None);
        objects.put_derived("decoded", &a, b"first").unwrap();
        objects.put_derived("decoded", &a, b"second").unwrap();
        objects.put_derived("other-kind", &a, b"x").unwrap();
        assert_eq!(objects.get_derived("decoded", &a).unwrap(), &b"second"[..]);
        assert_eq!(objects.get_derived("decoded", &b), None);
        objects.remove_derived("decoded", &a);
        assert_eq!(objects.get_derived("decoded", &a), None);
        assert_eq!(objects.get_derived("other-kind", &a).unwrap(), &b"x"[..]);
        // Nothing is left in tmp, and no object was stored.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(!dir.path().join("objects").exists());
    }

    #[test]
    fn derived_files_past_the_limit_go_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let mut objects = Objects::new(dir.path());
        objects.derived_max = 250;
        let ids: Vec<ContentHash> = (0..4u8).map(|i| ContentHash::of(&[i])).collect();
        // Written a second apart, as far as their times say.
        let age = |id: &ContentHash, seconds_ago: u64| {
            let f = fs::File::options()
                .write(true)
                .open(objects.derived_path("t", id))
                .unwrap();
            f.set_modified(
                std::time::SystemTime::now() - std::time::Duration::from_secs(seconds_ago),
            )
            .unwrap();
        };
        for (i, id) in ids[..2].iter().enumerate() {
            objects.put_derived("t", id, &[0; 100]).unwrap();
            age(id, 10 - i as u64);
        }
        objects.put_derived("other", &ids[0], &[0; 200]).unwrap();
        // Three of 100 bytes pass 250: the oldest goes, the one just written stays.
        objects.put_derived("t", &ids[2], &[0; 100]).unwrap();
        let kept = |id: &ContentHash| objects.derived_path("t", id).exists();
        assert_eq!(
            ids[..3].iter().map(kept).collect::<Vec<_>>(),
            [false, true, true]
        );
        // A read makes a file recent: reading #1 makes #2 the least recently used.
        age(&ids[1], 5);
        age(&ids[2], 3);
        assert!(objects.get_derived("t", &ids[1]).is_some());
        objects.put_derived("t", &ids[3], &[0; 100]).unwrap();
        assert_eq!(
            ids.iter().map(kept).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        // Each kind has its own limit.
        assert!(objects.derived_path("other", &ids[0]).exists());
    }
}
