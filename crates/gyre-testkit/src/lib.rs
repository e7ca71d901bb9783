//! What gyre's tests start for themselves: a throwaway PostgreSQL cluster (Debian's binaries,
//! a temporary directory, a free port on loopback) and an S3-compatible server (moto, from
//! PyPI), and the rule for a test whose service is missing: it says so and returns, unless
//! `GYRE_REQUIRE_SERVICES=1` (CI), where it fails.
//!
//! Servers are children of a keeper thread that lives as long as the test process, with the
//! parent-death signal set: when the tests end, however they end, the servers go too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Whether a test may use a service: yes when `available`. When not, the test says so on
/// stderr and should return (this gives false), unless `GYRE_REQUIRE_SERVICES=1`, where a
/// missing one fails it. `what` names it and how to get it.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var("GYRE_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test} needs what is missing ({what}), and GYRE_REQUIRE_SERVICES=1");
    }
    let _ = writeln!(std::io::stderr(), "did not run: {test} ({what})");
    false
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Spawns `cmd` from the keeper thread (see the module's note), as `uid`/`gid` when given,
/// with SIGQUIT as its parent-death signal.
fn spawn_kept(mut cmd: Command, ids: Option<(u32, u32)>) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    type Job = (
        Command,
        Option<(u32, u32)>,
        mpsc::Sender<std::io::Result<Child>>,
    );
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gyre-testkit-keeper".into())
            .spawn(move || {
                for (mut cmd, ids, reply) in rx {
                    // SAFETY: only async-signal-safe calls between fork and exec.
                    unsafe {
                        cmd.pre_exec(move || {
                            if let Some((uid, gid)) = ids
                                && (libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
                            {
                                return Err(std::io::Error::last_os_error());
                            }
                            // After the credentials change, which clears it.
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
                // The channel's sender lives in a static: never reached while tests run.
                loop {
                    std::thread::park();
                }
            })
            .expect("a keeper thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    cmd.stdin(Stdio::null());
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, ids, reply))
        .expect("the keeper runs");
    answer.recv().expect("the keeper answers")
}

/// The pids whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so read after its last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// The directory of PostgreSQL's server binaries: `initdb` on PATH, else Debian's newest
/// `/usr/lib/postgresql/N/bin`.
pub fn postgres_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|v| v.1)
}

fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: getuid and getpwnam are called before any thread of ours changes the user
    // database; the returned record is read at once.
    unsafe {
        if libc::getuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// The password of every throwaway cluster's `gyre` role (over TCP; the socket trusts).
pub const PG_PASSWORD: &str = "gyre-test-password";

/// A throwaway PostgreSQL cluster. TCP connections (127.0.0.1) need the password
/// [`PG_PASSWORD`]; connections through its socket directory are trusted.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    ids: Option<(u32, u32)>,
    pub port: u16,
    server: Mutex<Option<Child>>,
    next_db: Mutex<u32>,
}

impl Postgres {
    /// The process's shared cluster, started on first use; `None` without PostgreSQL's
    /// binaries (the caller reports it with [`require`]).
    pub fn shared() -> Option<&'static Postgres> {
        static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
        SHARED
            .get_or_init(|| match Postgres::start() {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "PostgreSQL did not start: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// A cluster of one's own (one a test may kill and restart).
    pub fn start() -> Result<Postgres, String> {
        let bin =
            postgres_bin().ok_or("no PostgreSQL server binaries (apt-get install postgresql)")?;
        let ids = postgres_ids();
        let dir = tempfile::Builder::new()
            .prefix("gyre-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = ids {
            let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
                .expect("no NUL in a temp path");
            // SAFETY: a valid C string; initdb refuses to run as root, so the cluster's
            // directory belongs to postgres.
            if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                return Err(format!("chown {}", dir.path().display()));
            }
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PG_PASSWORD).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = ids {
            let c = std::ffi::CString::new(pwfile.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: as above.
            unsafe { libc::chown(c.as_ptr(), uid, gid) };
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "gyre",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--no-instructions",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = spawn_kept(initdb, ids)
            .and_then(|c| c.wait_with_output())
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pg = Postgres {
            dir,
            bin,
            ids,
            port: free_port(),
            server: Mutex::new(None),
            next_db: Mutex::new(0),
        };
        pg.run_server()?;
        Ok(pg)
    }

    fn run_server(&self) -> Result<(), String> {
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=60",
                "-c",
                "shared_buffers=32MB",
            ])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            );
        let child = spawn_kept(cmd, self.ids).map_err(|e| format!("postgres: {e}"))?;
        *self.server.lock().unwrap() = Some(child);
        // Ready when it accepts on its socket and its port.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if self
                .dir
                .path()
                .join(format!(".s.PGSQL.{}", self.port))
                .exists()
                && wait_for_port(self.port, Duration::from_millis(100))
                && self.psql("postgres", "SELECT 1").is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres did not start: {}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        ))
    }

    /// Kills the server at once (SIGKILL: no shutdown, as a crash or a lost machine).
    pub fn kill(&self) {
        if let Some(mut c) = self.server.lock().unwrap().take() {
            // The backends first (a backend outlives its postmaster for a while and could
            // still commit), then the postmaster.
            for child in children(c.id()) {
                // SAFETY: signalling a pid read from /proc; at worst it is gone already.
                unsafe { libc::kill(child as i32, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // The backends of a killed postmaster notice and exit; wait until the port is free.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10)
            && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.dir.path().join("data/postmaster.pid"));
    }

    /// Starts the server again after [`Postgres::kill`] (recovering from its log).
    pub fn restart(&self) -> Result<(), String> {
        self.run_server()
    }

    /// Runs SQL through `psql` on the socket (trusted), as `gyre`.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let psql = ["psql"]
            .iter()
            .map(|p| self.bin.join(p))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let out = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "gyre",
                "-h",
            ])
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// A fresh, empty database; its URL over TCP (needs [`PG_PASSWORD`] in `PGPASSWORD`).
    pub fn new_database(&self) -> String {
        let name = {
            let mut n = self.next_db.lock().unwrap();
            *n += 1;
            format!("gyre_{}_{}", std::process::id(), *n)
        };
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        format!("postgres://gyre@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of `db` through the trusted socket (no password needed).
    pub fn socket_url(&self, tcp_url: &str) -> String {
        let db = tcp_url.rsplit('/').next().expect("a database");
        let sock: String = self
            .dir
            .path()
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'/' => "%2F".to_string(),
                b => (b as char).to_string(),
            })
            .collect();
        format!("postgres://gyre@{sock}:{}/{db}", self.port)
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.lock().unwrap().take() {
            // SIGQUIT: immediate shutdown, the backends too.
            // SAFETY: the pid is our child's, not yet waited for.
            unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) };
            let _ = c.wait();
        }
    }
}

/// An S3-compatible server on loopback (moto's), with buckets made on request.
pub struct S3 {
    pub port: u16,
    server: Mutex<Option<Child>>,
    next_bucket: Mutex<u32>,
}

/// The access keys tests give the S3 server (moto accepts any).
pub const S3_KEY_ID: &str = "gyre-test-key";
pub const S3_SECRET: &str = "gyre-test-secret";

impl S3 {
    /// The process's shared server; `None` without `moto_server` (pip install 'moto[server]').
    pub fn shared() -> Option<&'static S3> {
        static SHARED: OnceLock<Option<S3>> = OnceLock::new();
        SHARED
            .get_or_init(|| match S3::start() {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "the S3 server did not start: {e}");
                    None
                }
            })
            .as_ref()
    }

    pub fn start() -> Result<S3, String> {
        // `moto_server` on PATH, else the module of the Python that has it (a pip install
        // whose scripts directory is not on PATH).
        let exe = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("moto_server"))
                .find(|p| p.is_file())
        });
        let launcher = match exe {
            Some(exe) => vec![exe.into_os_string()],
            None if Command::new("python3")
                .args(["-c", "import moto.server, flask"])
                .output()
                .is_ok_and(|o| o.status.success()) =>
            {
                vec!["python3".into(), "-m".into(), "moto.server".into()]
            }
            None => return Err("no moto_server (pip install 'moto[server]')".into()),
        };
        let s3 = S3 {
            port: free_port(),
            server: Mutex::new(None),
            next_bucket: Mutex::new(0),
        };
        s3.run_server(&launcher)?;
        Ok(s3)
    }

    fn run_server(&self, launcher: &[std::ffi::OsString]) -> Result<(), String> {
        let mut cmd = Command::new(&launcher[0]);
        cmd.args(&launcher[1..])
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_kept(cmd, None).map_err(|e| format!("moto_server: {e}"))?;
        *self.server.lock().unwrap() = Some(child);
        if !wait_for_port(self.port, Duration::from_secs(30)) {
            return Err("moto_server did not listen within 30 s".into());
        }
        Ok(())
    }

    /// Kills the server at once (its objects, held in memory, are gone with it).
    pub fn kill(&self) {
        if let Some(mut c) = self.server.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A fresh bucket; its `s3://` URL with a prefix.
    pub fn new_bucket(&self) -> String {
        let name = {
            let mut n = self.next_bucket.lock().unwrap();
            *n += 1;
            format!("gyre-{}-{}", std::process::id(), *n)
        };
        let status = self.request("PUT", &format!("/{name}"));
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "creating bucket {name}: {status}"
        );
        format!("s3://{name}/project")
    }

    /// One unsigned request with an empty body; the status line of the answer.
    fn request(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("the S3 server");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("a request");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_string()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Ray head node on loopback (Ray from PyPI: `pip install 'ray[default]'`), with token auth
/// on and 2 CPUs, its ports chosen free. `ray start` leaves the head running as daemons that
/// are no children of ours, so the test that starts one holds it and `stop` (or its drop)
/// runs `ray stop --force`, which stops every Ray process of this machine's user.
pub struct Ray {
    /// The dashboard's address, where the Jobs REST API answers.
    pub url: String,
    /// The cluster's token (RAY_AUTH_TOKEN).
    pub token: String,
    ray: PathBuf,
    temp: tempfile::TempDir,
}

impl Ray {
    /// The `ray` command: on PATH, or beside the Python that has the package.
    fn command() -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("ray"))
                .find(|p| p.is_file())
        });
        on_path.or_else(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import ray, sys, os; print(os.path.join(os.path.dirname(sys.executable), 'ray'))",
                ])
                .output()
                .ok()?;
            let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
            p.is_file().then_some(p)
        })
    }

    /// Starts a head node; an error says why not (no Ray, or it did not come up).
    pub fn start() -> Result<Ray, String> {
        let ray = Ray::command().ok_or("no ray (pip install 'ray[default]')")?;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Socket paths must stay short: a directory right under /tmp.
        let temp = tempfile::Builder::new()
            .prefix("gyre-ray-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let dashboard = free_port();
        let out = Command::new(&ray)
            .args([
                "start",
                "--head",
                "--num-cpus",
                "2",
                "--disable-usage-stats",
            ])
            .args([
                "--dashboard-host",
                "127.0.0.1",
                "--include-dashboard",
                "true",
            ])
            .args(["--port", &free_port().to_string()])
            .args(["--dashboard-port", &dashboard.to_string()])
            .args(["--ray-client-server-port", &free_port().to_string()])
            .args(["--dashboard-agent-listen-port", &free_port().to_string()])
            .arg("--temp-dir")
            .arg(temp.path())
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &token)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("ray start: {e}"))?;
        let head = Ray {
            url: format!("http://127.0.0.1:{dashboard}"),
            token,
            ray,
            temp,
        };
        if !out.status.success() {
            return Err(format!(
                "ray start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The Jobs API answers once the dashboard's job module is up.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", dashboard)) {
                let _ = write!(
                    s,
                    "GET /api/jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                    head.token
                );
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return Ok(head);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err("Ray's Jobs API did not answer within 60 s".into())
    }

    /// Where the head keeps its sessions and logs.
    pub fn temp_dir(&self) -> &Path {
        self.temp.path()
    }

    /// Stops the head (and every Ray process of this user on this machine).
    pub fn stop(&self) {
        let _ = Command::new(&self.ray)
            .args(["stop", "--force"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Ray {
    fn drop(&mut self) {
        self.stop();
    }
}
