//! Helpers for tests that run the real `gyre` binary in a temporary project.
#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gyre")
}

/// The bundled UCI Adult file.
pub fn adult() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/adult/adult.csv.gz")
}

pub struct Project {
    pub dir: tempfile::TempDir,
    /// Environment every command gets (a team store's credentials).
    pub env: Vec<(String, String)>,
}

/// A fresh team store (a database on the tests' PostgreSQL cluster, a bucket on their S3
/// server) and the environment that reaches it; `None`, reported, where either is missing.
pub struct TeamStore {
    pub metadata: String,
    pub objects: String,
    pub env: Vec<(String, String)>,
    pub pg: &'static gyre_testkit::Postgres,
}

impl TeamStore {
    pub fn new() -> Option<TeamStore> {
        let pg = gyre_testkit::Postgres::shared();
        if !require("PostgreSQL: apt-get install postgresql", pg.is_some()) {
            return None;
        }
        let s3 = gyre_testkit::S3::shared();
        if !require("an S3 server: pip install 'moto[server]'", s3.is_some()) {
            return None;
        }
        let (pg, s3) = (pg?, s3?);
        Some(TeamStore {
            metadata: pg.new_database(),
            objects: s3.new_bucket(),
            env: vec![
                ("PGPASSWORD".into(), gyre_testkit::PG_PASSWORD.into()),
                ("AWS_ACCESS_KEY_ID".into(), gyre_testkit::S3_KEY_ID.into()),
                (
                    "AWS_SECRET_ACCESS_KEY".into(),
                    gyre_testkit::S3_SECRET.into(),
                ),
                ("AWS_ENDPOINT_URL".into(), s3.endpoint()),
                ("AWS_REGION".into(), "us-east-1".into()),
            ],
            pg,
        })
    }

    /// A new working directory on this team store (`gyre init --store --objects`): the first
    /// makes the team's project, later ones join it.
    pub fn project(&self) -> Project {
        let mut p = Project::empty();
        p.env = self.env.clone();
        let out = p.run(&[
            "init",
            "--store",
            &self.metadata,
            "--objects",
            &self.objects,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        p
    }
}

/// A Ray head node of the test's own (token auth on); `None`, reported, where Ray is missing.
pub fn ray_head() -> Option<gyre_testkit::Ray> {
    match gyre_testkit::Ray::start() {
        Ok(r) => Some(r),
        Err(e) => {
            require(
                &format!("a Ray head: pip install 'ray[default]' ({e})"),
                false,
            );
            None
        }
    }
}

impl Project {
    /// A fresh, initialized project.
    pub fn new() -> Project {
        let p = Project::empty();
        let out = p.run(&["init"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        p
    }

    /// A temporary directory that is not a project.
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.path())
            .env("GYRE_USER", "tester")
            .env_remove("GYRE_PROJECT")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs with --json, expects success, and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "gyre {args:?} failed: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("gyre {args:?}: invalid JSON ({e}): {}", stdout(&out)))
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Everything a failed command must leave untouched: the journal and the object files.
    pub fn snapshot(&self) -> (usize, Vec<PathBuf>) {
        let log = self.json(&["log"]);
        let entries = log["entries"].as_array().unwrap().len();
        (entries, files_under(&self.path().join(".gyre/objects")))
    }

    pub fn import_adult(&self) -> serde_json::Value {
        let adult = adult();
        self.json(&[
            "import",
            adult.to_str().unwrap(),
            "--target",
            "income",
            "--split-column",
            "split",
        ])
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts exit code 2 and that stderr contains every needle; returns stderr.
pub fn assert_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    err
}

/// A fixture file under the repo's `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Number of runs stored.
pub fn run_count(p: &Project) -> usize {
    p.json(&["runs"])["runs"].as_array().unwrap().len()
}

/// Whether a test may use something from outside the workspace (a Python package, a
/// service): the test says so and returns when it is missing, or fails under
/// `GYRE_REQUIRE_SERVICES=1` (CI). One rule for every test: gyre-testkit's.
pub use gyre_testkit::require;

/// 6,000 rows `a,b,x,y` whose label follows x (`yes` when x > 0.5), except inside
/// `a = 'a2' AND b = 'b1'`, where it is a coin flip: a slice planted for findings to find.
pub fn planted_slice_csv() -> String {
    let mut csv = String::from("a,b,x,y\n");
    let mut rng = Lcg::new(21);
    let mut next = || rng.next_u64();
    for _ in 0..6000 {
        let (a, b) = (next() % 4, next() % 3);
        let x = (next() % 1000) as f64 / 1000.0;
        let y = if a == 2 && b == 1 {
            next() % 2 == 0
        } else {
            x > 0.5
        };
        csv.push_str(&format!("a{a},b{b},{x},{}\n", if y { "yes" } else { "no" }));
    }
    csv
}

/// The tests' seeded pseudo-random numbers (Knuth's MMIX linear congruential generator): the
/// data they generate is the same on every machine and run.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// The next number, 31 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// The next number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.next_u64() as f64 / (1u64 << 31) as f64
    }
}

// A `gyre serve` process on loopback, for the tests that send it real HTTP.

/// Kills the server if the test fails before it stops it, so no process outlives the test.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = http_with(
        addr,
        method,
        path,
        &[("Host", "test"), ("Content-Type", "application/json")],
        body,
    );
    (status, body)
}

/// A request with these headers (Content-Length and Connection are added); the status, the
/// response's head and its body.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new(), String::new());
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or_default();
    (status, head, body)
}

/// Starts `gyre serve` on a free port; returns the process, its address and its ready line.
pub fn start(p: &Project, extra: &[&str]) -> (Server, String, serde_json::Value) {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--json"];
    args.extend_from_slice(extra);
    spawn_ready(p, &args)
}

/// Runs a long-lived gyre command whose first line on stdout is a JSON ready line with `addr`.
pub fn spawn_ready(p: &Project, args: &[&str]) -> (Server, String, serde_json::Value) {
    let mut server = Server(
        p.cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("serve did not start ({e}): {first:?}"));
    let addr = ready["addr"].as_str().unwrap().to_string();
    (server, addr, ready)
}

/// SIGTERM, and the exit status.
pub fn stop(server: &mut Server) -> Option<i32> {
    let pid = server.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    server.0.wait().unwrap().code()
}

pub fn post(addr: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = http(addr, "POST", path, body.to_string().as_bytes());
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}
