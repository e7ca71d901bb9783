//! Making a project on the team store (`gyre init --store ... --objects ...`) and moving a
//! project between stores (`gyre store copy`).

use crate::{App, AppError, InitReport, ProjectLocation, config};
use gyre_store::{CONFIG_FILE, STATE_DIR, Store, StoreConfig};
use std::path::{Path, PathBuf};

/// Where a project's metadata and objects live, as reports show it (no secrets).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoreLocation {
    /// `embedded` (SQLite and object files in .gyre), `team` (PostgreSQL and S3) or `server` (a
    /// clone of a team server: both there).
    pub backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<String>,
}

impl StoreLocation {
    pub(crate) fn of(config: Option<&StoreConfig>) -> StoreLocation {
        match config {
            Some(c) => StoreLocation {
                backend: "team",
                metadata: c.metadata_shown(),
                objects: c.objects.clone(),
            },
            None => StoreLocation {
                backend: "embedded",
                metadata: None,
                objects: None,
            },
        }
    }
}

/// gyre.toml for a new project: the given settings, and the `[store]` section when the
/// project lives on the team store.
fn config_text(settings: &str, store: Option<&StoreConfig>) -> String {
    match store {
        None => settings.to_string(),
        Some(s) => format!(
            "{}\n# The team store: metadata in PostgreSQL, objects in an S3-compatible bucket.\n\
             # Credentials come from PGPASSWORD or ~/.pgpass, and AWS_ACCESS_KEY_ID and\n\
             # AWS_SECRET_ACCESS_KEY or ~/.aws/credentials; never from this file.\n{}",
            settings.trim_end(),
            s.to_toml()
        ),
    }
}

/// Creates a project in `dir`; with `store`, on the team store (joining the team's project
/// when its database already holds one).
pub fn init_with(
    dir: &Path,
    command: &str,
    store: Option<&StoreConfig>,
) -> Result<InitReport, AppError> {
    if let Some(s) = store {
        s.check()?;
    }
    let root = Store::init(dir, &config_text(&config::default_config(), store))?;
    let mut app = App::open(ProjectLocation::Explicit(&root), command)?;
    let joined = !app.store.read(|tx| tx.is_empty())?;
    app.record(None, &[])?;
    Ok(InitReport {
        config: root.join(CONFIG_FILE),
        project: root,
        store: StoreLocation::of(store),
        joined,
    })
}

/// What `gyre store copy` did.
#[derive(serde::Serialize)]
pub struct CopyReport {
    pub from: PathBuf,
    pub from_store: StoreLocation,
    pub to: PathBuf,
    pub to_store: StoreLocation,
    pub objects: usize,
    pub object_bytes: u64,
    /// Rows copied, by table.
    pub rows: std::collections::BTreeMap<String, usize>,
    /// Both sides were read back and hold the same rows.
    pub verified: bool,
}

impl App {
    /// Where this project's metadata and objects live.
    pub fn store_location(&self) -> Result<StoreLocation, AppError> {
        let text = std::fs::read_to_string(self.store.config_path())
            .map_err(|e| AppError::from(gyre_store::StoreError::io(self.store.config_path(), e)))?;
        if let Some(url) = self.server_url() {
            return Ok(StoreLocation {
                backend: "server",
                metadata: Some(url.clone()),
                objects: Some(url),
            });
        }
        let c = StoreConfig::from_config_text(&text, &self.store.config_path())?;
        Ok(StoreLocation::of(c.as_ref()))
    }

    /// Copies this project, every object, run, edit, journal entry, alias move and finding,
    /// into a new project in `dest` on `store` (the embedded store when `None`), which must be
    /// empty. gyre.toml's other settings go with it. The source is not changed, except for a
    /// journal entry saying where it was copied; the copy's journal ends with one saying where
    /// it came from. On failure the new directory's project files are removed.
    pub fn copy_store(
        &mut self,
        dest: &Path,
        store: Option<&StoreConfig>,
        progress: impl FnMut(usize, usize),
    ) -> Result<CopyReport, AppError> {
        if let Some(s) = store {
            s.check()?;
        }
        if let Some(url) = self.server_url() {
            return Err(AppError::Invalid {
                message: format!("this is a clone of {url}: its store is the server's"),
                hint: Some("run gyre store copy where the server runs, in its project".into()),
            });
        }
        let from_store = self.store_location()?;
        let settings = std::fs::read_to_string(self.store.config_path())
            .map_err(|e| AppError::from(gyre_store::StoreError::io(self.store.config_path(), e)))?;
        let text = config_text(&config::without_store_section(&settings), store);
        let root = Store::init(dest, &text)?;
        let copied = Store::open(&root)
            .map_err(AppError::from)
            .and_then(|mut to| Ok(self.store.copy_into(&mut to, progress)?));
        let copied = match copied {
            Ok(c) => c,
            Err(e) => {
                // Nothing of the copy stays: its directory's project files go (a team
                // destination's tables were written in one transaction, rolled back).
                let _ = std::fs::remove_file(root.join(CONFIG_FILE));
                let _ = std::fs::remove_dir_all(root.join(STATE_DIR));
                return Err(e);
            }
        };
        let from = self.root().to_path_buf();
        let why = format!("copied from {} ({})", from.display(), from_store.backend);
        let mut there = App::open(ProjectLocation::Explicit(&root), &self.command)?;
        there.user = self.user.clone();
        there.record(Some(&why), &[])?;
        let to_store = StoreLocation::of(store);
        self.record(
            Some(&format!(
                "copied to {} ({})",
                root.display(),
                to_store.backend
            )),
            &[],
        )?;
        Ok(CopyReport {
            from,
            from_store,
            to: root,
            to_store,
            objects: copied.objects,
            object_bytes: copied.object_bytes,
            rows: copied.rows,
            verified: true,
        })
    }
}
