//! The conformance suite's backends: every store test that runs through [`backends`] runs
//! against the embedded store (SQLite and object files) and the team store (a throwaway
//! PostgreSQL cluster and an S3-compatible server on loopback, see gyre-testkit). Where the
//! team store's services are missing, the test says that its team half did not run.

use crate::Store;
use std::path::PathBuf;

/// Where a test's team store lives.
pub(crate) struct Team {
    /// Through the cluster's trusted socket.
    pub metadata: String,
    pub objects: String,
    pub endpoint: String,
    pub pg: &'static gyre_testkit::Postgres,
}

pub(crate) struct TestStore {
    pub store: Store,
    pub root: PathBuf,
    pub backend: &'static str,
    _dir: tempfile::TempDir,
}

/// A fresh team store's services, or `None` (reported) where they are missing.
pub(crate) fn team() -> Option<Team> {
    let pg = gyre_testkit::Postgres::shared();
    if !gyre_testkit::require(
        "PostgreSQL for the team store: apt-get install postgresql",
        pg.is_some(),
    ) {
        return None;
    }
    let s3 = gyre_testkit::S3::shared();
    if !gyre_testkit::require(
        "an S3-compatible server for the team store: pip install 'moto[server]'",
        s3.is_some(),
    ) {
        return None;
    }
    let (pg, s3) = (pg?, s3?);
    let _ = crate::remote::TEST_KEYS.set((
        gyre_testkit::S3_KEY_ID.into(),
        gyre_testkit::S3_SECRET.into(),
    ));
    Some(Team {
        metadata: pg.socket_url(&pg.new_database()),
        objects: s3.new_bucket(),
        endpoint: s3.endpoint(),
        pg,
    })
}

impl Team {
    pub(crate) fn config_text(&self) -> String {
        format!(
            "[store]\nmetadata = {:?}\nobjects = {:?}\nendpoint = {:?}\n",
            self.metadata, self.objects, self.endpoint
        )
    }
}

/// A new project on each backend.
pub(crate) fn backends() -> Vec<TestStore> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let root = Store::init(dir.path(), "").unwrap();
    out.push(TestStore {
        store: Store::open(&root).unwrap(),
        root,
        backend: "embedded",
        _dir: dir,
    });
    if let Some(team) = team() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), &team.config_text()).unwrap();
        out.push(TestStore {
            store: Store::open(&root).unwrap(),
            root,
            backend: "team",
            _dir: dir,
        });
    }
    out
}
