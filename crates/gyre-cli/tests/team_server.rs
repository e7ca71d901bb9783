//! `gyre server` through the real binary on loopback: people, tokens and roles; clones that
//! run the loop through it; the security cases of the issue; serving replicas whose traffic
//! all reaches the team's monitor, once.

mod common;
use common::*;
use std::io::BufRead;

/// A `gyre server` process on a free port, for a project of its own, with its stderr kept.
struct TeamServer {
    project: Project,
    server: Option<Server>,
    addr: String,
    log: std::path::PathBuf,
    /// `--store URL --objects URL` for the first start (the server makes the team project).
    store_args: Vec<String>,
}

impl TeamServer {
    /// A server for a fresh project: embedded, or on the team store when given (made by
    /// `gyre server --store --objects` itself, in an empty directory).
    fn start(team: Option<&TeamStore>) -> TeamServer {
        let (project, store_args) = match team {
            Some(t) => {
                let mut p = Project::empty();
                p.env = t.env.clone();
                let args = vec![
                    "--store".to_string(),
                    t.metadata.clone(),
                    "--objects".into(),
                    t.objects.clone(),
                ];
                (p, args)
            }
            None => (Project::new(), Vec::new()),
        };
        let log = project.path().join("server.err");
        let mut ts = TeamServer {
            project,
            server: None,
            addr: String::new(),
            log,
            store_args,
        };
        ts.restart();
        assert!(ts.project.path().join("gyre.toml").is_file());
        ts
    }

    fn restart(&mut self) {
        let port = if self.addr.is_empty() {
            "127.0.0.1:0".to_string()
        } else {
            self.addr.clone()
        };
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut args = vec!["server", "--addr", &port, "--json"];
        args.extend(self.store_args.iter().map(String::as_str));
        let mut child = self
            .project
            .cmd(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("gyre server did not start ({e}): {first:?}"));
        self.addr = ready["addr"].as_str().unwrap().to_string();
        self.server = Some(Server(child));
    }

    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            assert_eq!(stop(&mut s), Some(0), "{}", self.server_log());
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a person; their first token.
    fn person(&self, name: &str, role: &str) -> String {
        let t = self
            .project
            .json(&["server", "user", "add", name, "--role", role]);
        assert_eq!(t["person"], name);
        t["token"].as_str().unwrap().to_string()
    }

    /// A clone of the project in a fresh directory, working with `token`.
    fn clone_as(&self, token: &str) -> Project {
        let mut p = Project::empty();
        // A name the client claims: the server must record the token's person instead.
        p.env = vec![
            ("GYRE_TOKEN".into(), token.into()),
            ("GYRE_USER".into(), "mallory".into()),
        ];
        let dir = p.path().join("work");
        let out = p.run(&["clone", &self.url(), dir.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // Every later command runs in the clone.
        p.env
            .push(("GYRE_PROJECT".into(), dir.to_string_lossy().into()));
        p
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TeamServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- gyre server's output ---\n{}", self.server_log());
        }
    }
}

/// Runs with the project from the environment (`cmd` removes GYRE_PROJECT first).
fn run_in(p: &Project, args: &[&str]) -> std::process::Output {
    let dir = p
        .env
        .iter()
        .find(|(k, _)| k == "GYRE_PROJECT")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut c = p.cmd(args);
    c.current_dir(&dir);
    c.output().unwrap()
}

fn json_in(p: &Project, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run_in(p, &a);
    assert_eq!(
        out.status.code(),
        Some(0),
        "gyre {args:?} failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn journal(p: &Project) -> Vec<serde_json::Value> {
    json_in(p, &["log"])["entries"].as_array().unwrap().clone()
}

fn authed(token: &str) -> String {
    format!("Bearer {token}")
}

fn api(addr: &str, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let auth = token.map(authed);
    let mut headers = vec![("Host", "test"), ("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, _, body) = http_with(addr, method, path, &headers, body);
    (status, body)
}

fn clone_runs_the_loop(team: Option<&TeamStore>) {
    let mut server = TeamServer::start(team);
    let ana = server.person("ana", "maintainer");
    let ben = server.person("ben", "member");
    let vic = server.person("vic", "viewer");

    let a = server.clone_as(&ana);
    let toml = std::fs::read_to_string(a.path().join("work/gyre.toml")).unwrap();
    assert!(
        toml.contains("[server]") && toml.contains(&server.url()),
        "{toml}"
    );
    assert!(
        !toml.contains(&ana),
        "the token is never written into gyre.toml"
    );
    assert!(!toml.contains("[store]"), "{toml}");
    a.import_adult();
    let e = json_in(
        &a,
        &[
            "edit",
            "exclude",
            "--where",
            "age < 20",
            "--why",
            "teenagers are not our users",
        ],
    );
    let r = json_in(&a, &["train", "-p", "num_iterations=20", "--seed", "7"]);
    assert_eq!(r["version"], e["version"]);
    let run = r["run"].as_str().unwrap().to_string();
    assert_eq!(
        json_in(&a, &["promote", &run, "--why", "first"])["promoted"],
        true
    );

    // Ben's clone sees it all, and trains the same version to the same model from the
    // server's table (fetched once, checked by its hash).
    let b = server.clone_as(&ben);
    assert_eq!(
        json_in(&b, &["runs"])["runs"],
        json_in(&a, &["runs"])["runs"]
    );
    let again = json_in(&b, &["train", "-p", "num_iterations=20", "--seed", "7"]);
    assert_eq!(again["metrics"], r["metrics"]);
    let d = json_in(&b, &["diff", &run, again["run"].as_str().unwrap()]);
    assert_eq!(d["flips"]["negative"], 0, "{d}");
    assert_eq!(d["flips"]["positive"], 0, "{d}");

    // The journal names the token's person, never the name the client claimed.
    let entries = journal(&a);
    let who: Vec<&str> = entries
        .iter()
        .map(|e| e["user"].as_str().unwrap())
        .collect();
    assert!(!who.contains(&"mallory"), "{who:?}");
    assert!(who.contains(&"ana") && who.contains(&"ben"), "{who:?}");
    let runs = json_in(&a, &["runs"]);
    let by: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["created_by"].as_str().unwrap_or(""))
        .collect();
    assert!(by.iter().all(|w| *w == "ana" || *w == "ben"), "{runs}");

    // A viewer reads, and may not edit: refused, nothing changed.
    let v = server.clone_as(&vic);
    assert_eq!(
        json_in(&v, &["runs"])["runs"],
        json_in(&a, &["runs"])["runs"]
    );
    // A look the cache does not hold yet: computed, shown, and not kept (a viewer writes nothing).
    let before = journal(&a).len();
    let sl = json_in(&v, &["slices", &run, "--min-support", "50"]);
    assert!(sl["slices"].is_array(), "{sl}");
    assert_eq!(journal(&a).len(), before);
    let before = journal(&a).len();
    let versions = json_in(&a, &["data", "--versions"]);
    let out = run_in(
        &v,
        &[
            "edit",
            "exclude",
            "--where",
            "age > 80",
            "--why",
            "a viewer tries",
        ],
    );
    assert_error(&out, &["vic", "viewer", "may not"]);
    // A member may not promote.
    let out = run_in(
        &b,
        &["promote", again["run"].as_str().unwrap(), "--why", "me"],
    );
    assert_error(&out, &["ben", "member", "may not", "maintainer"]);
    assert_eq!(json_in(&a, &["aliases"])["aliases"][0]["run"], run.as_str());
    assert_eq!(json_in(&a, &["data", "--versions"]), versions);
    // The refused commands left nothing (their own journal lines included).
    assert_eq!(journal(&a).len(), before);

    // People and tokens from a clone, through the server: a maintainer adds a person; a
    // member may not, but makes, lists and revokes tokens of their own.
    let dee = json_in(&a, &["server", "user", "add", "dee", "--role", "viewer"]);
    assert_eq!(dee["role"], "viewer");
    let out = run_in(
        &b,
        &["server", "user", "add", "eve", "--role", "maintainer"],
    );
    assert_error(&out, &["ben", "member", "may not"]);
    let extra = json_in(&b, &["server", "token", "create", "--label", "laptop"]);
    assert_eq!(extra["person"], "ben");
    let mine = json_in(&b, &["server", "token", "list"]);
    assert_eq!(mine["tokens"].as_array().unwrap().len(), 2, "{mine}");
    let out = run_in(&b, &["server", "token", "list", "--user", "ana"]);
    assert_error(&out, &["may not"]);
    let gone = json_in(
        &b,
        &["server", "token", "revoke", extra["id"].as_str().unwrap()],
    );
    assert!(gone["revoked"][0]["revoked_at"].is_string(), "{gone}");
    // A maintainer makes a token for someone else (the contract's positional NAME), and
    // revokes every live token of a person at once.
    let dee2 = json_in(
        &a,
        &["server", "token", "create", "dee", "--label", "second"],
    );
    assert_eq!(dee2["person"], "dee");
    let all = json_in(&a, &["server", "token", "revoke", "--user", "dee"]);
    assert_eq!(all["revoked"].as_array().unwrap().len(), 2, "{all}");
    let everyone = json_in(&a, &["server", "user", "list"]);
    assert_eq!(
        everyone["people"].as_array().unwrap().len(),
        4,
        "{everyone}"
    );
    let e = journal(&a);
    let added = e
        .iter()
        .find(|x| x["command"].as_str().unwrap().contains("user add dee"))
        .unwrap();
    assert_eq!(added["user"], "ana");

    // A revoked token is refused from its next request on.
    let tokens = server
        .project
        .json(&["server", "token", "list", "--user", "ben"]);
    let id = tokens["tokens"][0]["id"].as_str().unwrap().to_string();
    assert!(
        !tokens.to_string().contains(&ben),
        "a token list never shows a token"
    );
    server.project.json(&["server", "token", "revoke", &id]);
    let out = run_in(&b, &["runs"]);
    let err = assert_error(&out, &["revoked"]);
    assert!(!err.contains(&ben));

    // No token anywhere it should not be: the server's output, the journal, errors.
    server.stop();
    let log = server.server_log();
    // The server's output names who changed what.
    assert!(
        log.contains("/commit 200") && log.contains(" by ana") && log.contains(" by ben"),
        "{log}"
    );
    for t in [&ana, &ben, &vic] {
        assert!(!log.contains(t.as_str()), "a token in the server's output");
        assert!(
            !serde_json::to_string(&entries)
                .unwrap()
                .contains(t.as_str()),
            "a token in the journal"
        );
    }
    assert!(!log.contains(gyre_testkit::PG_PASSWORD));
}

#[test]
fn a_clone_runs_the_loop_through_the_server_with_roles_and_real_names() {
    clone_runs_the_loop(None);
}

#[test]
fn a_server_on_the_team_store_serves_clones_too() {
    let Some(team) = TeamStore::new() else { return };
    clone_runs_the_loop(Some(&team));
}

#[test]
fn the_api_refuses_what_it_must_and_changes_nothing() {
    let server = TeamServer::start(None);
    let ana = server.person("ana", "maintainer");
    let vic = server.person("vic", "viewer");
    let a = server.clone_as(&ana);
    a.import_adult();
    let addr = server.addr.clone();
    let begin = |op: serde_json::Value, write: bool| -> serde_json::Value {
        serde_json::json!({ "write": write, "op": op })
    };
    let datasets = begin(serde_json::json!({ "op": "datasets" }), false).to_string();

    // No token, a wrong one: 401.
    assert_eq!(
        api(&addr, "POST", "/v1/tx", None, datasets.as_bytes()).0,
        401
    );
    assert_eq!(
        api(
            &addr,
            "POST",
            "/v1/tx",
            Some("gyre_0000"),
            datasets.as_bytes()
        )
        .0,
        401
    );
    assert_eq!(api(&addr, "GET", "/v1/whoami", Some("nope"), b"").0, 401);
    // The health check needs none.
    assert_eq!(api(&addr, "GET", "/v1/health", None, b"").0, 200);
    // A viewer reads, and may not write: 403 at the first write.
    let (s, body) = api(&addr, "POST", "/v1/tx", Some(&vic), datasets.as_bytes());
    assert_eq!(s, 200, "{body}");
    let j = serde_json::json!({ "op": "append_journal", "args": {
        "time": "2026-01-01T00:00:00Z", "user": "x", "command": "forged", "why": null, "objects": [] } });
    let (s, body) = api(
        &addr,
        "POST",
        "/v1/tx",
        Some(&vic),
        begin(j.clone(), true).to_string().as_bytes(),
    );
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("viewer"), "{body}");
    // Malformed JSON, and JSON of the wrong shape: 400 naming the problem.
    let (s, body) = api(&addr, "POST", "/v1/tx", Some(&ana), b"{\"write\": tru");
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("line 1"), "{body}");
    let (s, body) = api(
        &addr,
        "POST",
        "/v1/tx",
        Some(&ana),
        b"{\"write\": true, \"op\": {\"op\": \"drop_table\"}}",
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("drop_table"), "{body}");
    // An oversized body: 413.
    let big = vec![b' '; 17 << 20];
    assert_eq!(api(&addr, "POST", "/v1/tx", Some(&ana), &big).0, 413);
    // Object ids that are not ids (a path out of the store): 400, nothing read or written.
    for bad in ["..%2F..%2Fgyre.toml", "..", "0123", "%2Fetc%2Fpasswd"] {
        let (s, body) = api(&addr, "GET", &format!("/v1/objects/{bad}"), Some(&ana), b"");
        assert!(s == 400 || s == 404, "{bad}: {s} {body}");
        let (s, _) = api(
            &addr,
            "PUT",
            &format!("/v1/objects/{bad}"),
            Some(&ana),
            b"x",
        );
        assert!(s == 400 || s == 404, "{bad}: {s}");
    }
    // Bytes that do not hash to the id they are sent as: refused.
    let zeros = "0".repeat(64);
    let (s, body) = api(
        &addr,
        "PUT",
        &format!("/v1/objects/{zeros}"),
        Some(&ana),
        b"not zeros",
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("hash"), "{body}");
    assert_eq!(
        api(
            &addr,
            "HEAD",
            &format!("/v1/objects/{zeros}"),
            Some(&ana),
            b""
        )
        .0,
        404
    );
    // A run that points at objects the server does not hold: refused (409), nothing recorded.
    let runs_before = json_in(&a, &["runs"])["total"].clone();
    let run = serde_json::json!({ "op": "insert_run", "args": {
        "id": "f".repeat(64), "dataset": "adult", "version": "nope", "learner": "gbdt",
        "params": "{}", "seed": 1, "model": zeros, "predictions": zeros, "metrics": "{}",
        "timings": "{}", "info": "{}", "seed_group": null, "created_at": "t", "created_by": "x" } });
    let (s, body) = api(
        &addr,
        "POST",
        "/v1/tx",
        Some(&ana),
        begin(run, true).to_string().as_bytes(),
    );
    assert_eq!(s, 409, "{body}");
    assert_eq!(json_in(&a, &["runs"])["total"], runs_before);
    // Someone else's transaction is not reachable with another token.
    let (s, body) = api(&addr, "POST", "/v1/tx", Some(&ana), datasets.as_bytes());
    assert_eq!(s, 200);
    let tx = serde_json::from_str::<serde_json::Value>(&body).unwrap()["tx"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = api(
        &addr,
        "POST",
        &format!("/v1/tx/{tx}/op"),
        Some(&vic),
        serde_json::json!({ "op": "datasets" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 404);
    assert_eq!(
        api(
            &addr,
            "POST",
            &format!("/v1/tx/{tx}/rollback"),
            Some(&ana),
            b"{}"
        )
        .0,
        200
    );

    // A client that begins a write and vanishes holds the write lock only until its
    // transaction is left idle (5 s): the next writer then goes ahead, and nothing of the
    // abandoned one is kept.
    let abandoned = begin(
        serde_json::json!({ "op": "append_journal", "args": {
            "time": "2026-01-01T00:00:00Z", "user": "x", "command": "abandoned", "why": null,
            "objects": [] } }),
        true,
    );
    let (s, body) = api(
        &addr,
        "POST",
        "/v1/tx",
        Some(&ana),
        abandoned.to_string().as_bytes(),
    );
    assert_eq!(s, 200, "{body}");
    let e = json_in(
        &a,
        &[
            "edit",
            "exclude",
            "--where",
            "age < 18",
            "--why",
            "after the abandoned one",
        ],
    );
    assert!(e["version"].is_string());
    assert!(!journal(&a).iter().any(|e| e["command"] == "abandoned"));

    // SQL metacharacters in reasons and predicates are data, never SQL.
    let sneaky = "x'); DROP TABLE runs; --";
    let e = json_in(
        &a,
        &["edit", "exclude", "--where", "age < 19", "--why", sneaky],
    );
    assert!(e["version"].is_string());
    let last = journal(&a);
    assert_eq!(last.last().unwrap()["why"], sneaky);
    let out = run_in(
        &a,
        &[
            "edit",
            "exclude",
            "--where",
            "age < 1; DROP TABLE runs",
            "--why",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(json_in(&a, &["runs"])["total"].is_number());
    // The UI too needs a token, and answers with the person's name on what they change.
    let (s, _) = api(&addr, "GET", "/runs", None, b"");
    assert_eq!(s, 401);
    let (s, body) = api(&addr, "GET", "/runs?format=json", Some(&vic), b"");
    assert_eq!(s, 200, "{body}");
    // The UI: ?token= once sets a cookie and leaves the address; the cookie then works; a
    // viewer's change is refused (403) and a maintainer's promotion needs a maintainer.
    let (s, head, _) = http_with(
        &addr,
        "GET",
        &format!("/runs?token={vic}"),
        &[("Host", "test")],
        b"",
    );
    assert_eq!(s, 303, "{head}");
    assert!(
        head.contains("gyre_ui_token=") && head.contains("HttpOnly"),
        "{head}"
    );
    assert!(
        head.contains("location: /runs") || head.contains("Location: /runs"),
        "{head}"
    );
    let cookie = format!("gyre_ui_token={vic}");
    let (s, _, _) = http_with(
        &addr,
        "GET",
        "/runs",
        &[("Host", "test"), ("Cookie", &cookie)],
        b"",
    );
    assert_eq!(s, 200);
    let (s, _, body) = http_with(
        &addr,
        "POST",
        "/findings/1/decide",
        &[
            ("Host", "test"),
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"decision=accept&why=x",
    );
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("viewer"), "{body}");

    // Nothing in the server's output names a token.
    let log = server.server_log();
    assert!(!log.contains(&ana) && !log.contains(&vic), "{log}");
}

/// A non-loopback address of this machine, if it has one (the plain-HTTP rule needs a peer
/// that is not loopback).
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:1").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn tokens_over_plain_http_from_another_machine_are_refused() {
    let Some(ip) = outside_address() else {
        gyre_testkit::require("a network address other than loopback", false);
        return;
    };
    let p = Project::new();
    let t = p.json(&["server", "user", "add", "ana", "--role", "viewer"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut server, addr, _) = spawn_ready(&p, &["server", "--addr", "0.0.0.0:0", "--json"]);
    let port = addr.rsplit_once(':').unwrap().1;
    let outside = format!("{ip}:{port}");
    let (s, body) = api(&outside, "GET", "/v1/whoami", Some(&t), b"");
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("plain HTTP"), "{body}");
    let local = format!("127.0.0.1:{port}");
    assert_eq!(api(&local, "GET", "/v1/whoami", Some(&t), b"").0, 200);
    stop(&mut server);
    let (mut server, addr, _) = spawn_ready(
        &p,
        &[
            "server",
            "--addr",
            "0.0.0.0:0",
            "--allow-plain-http",
            "--json",
        ],
    );
    let port = addr.rsplit_once(':').unwrap().1;
    assert_eq!(
        api(&format!("{ip}:{port}"), "GET", "/v1/whoami", Some(&t), b"").0,
        200
    );
    stop(&mut server);
}

#[test]
fn two_clients_edit_and_train_at_once_and_both_land_in_order() {
    let server = TeamServer::start(None);
    let ana = server.person("ana", "member");
    let ben = server.person("ben", "member");
    let a = server.clone_as(&ana);
    let b = server.clone_as(&ben);
    let data = a.write("planted.csv", planted_slice_csv().as_bytes());
    json_in(&a, &["import", data.to_str().unwrap(), "--target", "y"]);
    std::thread::scope(|s| {
        for (p, who) in [(&a, "a"), (&b, "b")] {
            s.spawn(move || {
                for i in 0..4 {
                    let out = run_in(
                        p,
                        &[
                            "edit",
                            "exclude",
                            "--where",
                            &format!("x = {i}"),
                            "--why",
                            &format!("{who}{i}"),
                        ],
                    );
                    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
                    let out = run_in(p, &["train", "-p", "num_iterations=5"]);
                    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
                }
            });
        }
    });
    let versions = json_in(&a, &["data", "--versions"]);
    let text = versions.to_string();
    for who in ["a", "b"] {
        for i in 0..4 {
            assert!(text.contains(&format!("\"{who}{i}\"")), "{text}");
        }
    }
    assert_eq!(json_in(&b, &["runs"])["total"], 8);
    let edits: Vec<i64> = journal(&a)
        .iter()
        .filter(|e| e["command"].as_str().unwrap().starts_with("gyre edit"))
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(edits.len(), 8);
}

/// A one-row request body for an Adult model.
fn adult_request(age: u64) -> serde_json::Value {
    serde_json::json!({ "rows": [{
        "age": age, "workclass": "Private", "fnlwgt": 100000, "education": "Bachelors",
        "education_num": 13, "marital_status": "Never-married", "occupation": null,
        "relationship": null, "race": null, "sex": "Male", "capital_gain": 0,
        "capital_loss": 0, "hours_per_week": 40, "native_country": null }] })
}

/// Requests to one replica: each answered prediction's id.
fn predict(addr: &str, n: usize, seed: u64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rng = Lcg::new(seed);
    for _ in 0..n {
        let body = adult_request(18 + (rng.next_u64() % 60));
        let (s, text) = http(addr, "POST", "/v1/predict", body.to_string().as_bytes());
        if s == 0 {
            // The replica is restarting: this request was never answered.
            continue;
        }
        assert_eq!(s, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for p in v["predictions"].as_array().unwrap() {
            ids.push(p["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

#[test]
fn replicas_ship_every_prediction_to_the_team_monitor_once() {
    let mut server = TeamServer::start(None);
    let ana = server.person("ana", "maintainer");
    let ops = server.person("ops", "member");
    let a = server.clone_as(&ana);
    a.import_adult();
    let run = json_in(&a, &["train", "-p", "num_iterations=10"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    json_in(&a, &["promote", &run, "--why", "serve it"]);

    let home = tempfile::tempdir().unwrap();
    let mut replica = Project::empty();
    replica.env = vec![("GYRE_TOKEN".into(), ops.clone())];
    let url = server.url();
    let start = |i: usize| {
        let dir = home.path().join(format!("r{i}"));
        spawn_ready(
            &replica,
            &[
                "serve",
                "--remote",
                &url,
                "--dir",
                dir.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
                "--json",
            ],
        )
    };
    let mut replicas: Vec<(Server, String)> = (0..3)
        .map(|i| {
            let (s, addr, ready) = start(i);
            assert_eq!(ready["run"], run.as_str());
            (s, addr)
        })
        .collect();
    let addrs: Vec<String> = replicas.iter().map(|r| r.1.clone()).collect();
    let mut answered: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| s.spawn(move || predict(addr, 60, i as u64)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    // Feedback for a prediction replica 0 served, sent to replica 2 (behind one load balancer
    // feedback reaches any replica): accepted, and in the team's log.
    let first = predict(&addrs[0], 1, 99);
    answered.extend(first.iter().cloned());
    let (s, body) = post(
        &addrs[2],
        "/v1/feedback",
        &serde_json::json!({ "id": first[0], "label": "<=50K" }),
    );
    assert_eq!(s, 200, "{body}");
    // The team server goes away for a while: replicas keep serving and keep their log.
    server.stop();
    answered.extend(predict(&addrs[0], 20, 7));
    answered.extend(predict(&addrs[2], 20, 8));
    // Replica 1 restarts (its log and name survive in its directory) while the server is
    // still away... then the server comes back.
    assert_eq!(stop(&mut replicas[1].0), Some(0));
    server.restart();
    let (s, addr1, _) = start(1);
    replicas[1] = (s, addr1.clone());
    answered.extend(predict(&addr1, 30, 9));
    answered.extend(predict(&addrs[2], 30, 10));
    // A promotion on the server: every replica follows the champion alias.
    let next = json_in(&a, &["train", "-p", "num_iterations=12"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    json_in(&a, &["promote", &next, "--why", "better", "--force"]);
    for addr in [&addr1, &addrs[2]] {
        let mut model = String::new();
        for _ in 0..100 {
            let body = adult_request(30);
            let (s, text) = http(addr, "POST", "/v1/predict", body.to_string().as_bytes());
            assert_eq!(s, 200, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            answered.push(v["predictions"][0]["id"].as_str().unwrap().to_string());
            model = v["predictions"][0]["model"].as_str().unwrap().to_string();
            if model == next {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(model, next, "replica {addr} did not follow the champion");
    }
    for r in replicas.iter_mut() {
        assert_eq!(stop(&mut r.0), Some(0));
    }
    let unique: std::collections::BTreeSet<&String> = answered.iter().collect();
    assert_eq!(
        unique.len(),
        answered.len(),
        "prediction ids repeat across replicas"
    );

    // Every answered prediction is in the team's monitor, once: a clone reads the team's log.
    let m = json_in(&a, &["monitor"]);
    assert_eq!(m["predictions"], answered.len(), "{m}");
    assert_eq!(m["feedback"], 1, "{m}");
    // A viewer reads the same monitor (and records nothing).
    let viewer = server.person("val", "viewer");
    let v = server.clone_as(&viewer);
    let before = journal(&a).len();
    assert_eq!(json_in(&v, &["monitor"])["predictions"], answered.len());
    assert_eq!(journal(&a).len(), before);
    // And in the server's own directory.
    let here = server.project.json(&["monitor"]);
    assert_eq!(here["predictions"], answered.len());
    server.stop();
}

/// A certificate authority and a server certificate for 127.0.0.1 and localhost, made by the
/// openssl command: (ca.pem, cert.pem, key.pem) in `dir`.
fn certificates(
    dir: &std::path::Path,
    also: Option<std::net::IpAddr>,
) -> Option<(String, String, String)> {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !gyre_testkit::require("the openssl command: apt-get install openssl", ok) {
        return None;
    }
    let p = |name: &str| dir.join(name).to_string_lossy().to_string();
    let also = also.map(|ip| format!(",IP:{ip}")).unwrap_or_default();
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:localhost,IP:127.0.0.1{also}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "2",
                "-subj",
                "/CN=gyre test CA",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec[..],
            &[
                "-keyout",
                &p("key.pem"),
                "-out",
                &p("req.csr"),
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &p("req.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("cert.pem"),
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
        ],
    ] {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    }
    Some((p("ca.pem"), p("cert.pem"), p("key.pem")))
}

#[test]
fn the_server_speaks_tls_itself_and_clones_check_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let outside = outside_address();
    let Some((ca, cert, key)) = certificates(certs.path(), outside) else {
        return;
    };
    let p = Project::new();
    let t = p.json(&["server", "user", "add", "ana", "--role", "member"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut server, addr, ready) = spawn_ready(
        &p,
        &[
            "server",
            "--addr",
            "0.0.0.0:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--json",
        ],
    );
    assert!(
        ready["url"].as_str().unwrap().starts_with("https://"),
        "{ready}"
    );
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let url = format!("https://127.0.0.1:{port}");
    // Trusting the team's authority: a clone works over TLS.
    let mut c = Project::empty();
    c.env = vec![
        ("GYRE_TOKEN".into(), t.clone()),
        ("GYRE_CA_CERT".into(), ca.clone()),
    ];
    let dir = c.path().join("work");
    let out = c.run(&["clone", &url, dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    c.env
        .push(("GYRE_PROJECT".into(), dir.to_string_lossy().into()));
    c.json(&[
        "import",
        adult().to_str().unwrap(),
        "--target",
        "income",
        "--split-column",
        "split",
    ]);
    assert_eq!(c.json(&["runs"])["total"], 0);
    // Without it, the certificate is refused and the token is not sent anywhere.
    let mut d = Project::empty();
    d.env = vec![("GYRE_TOKEN".into(), t.clone())];
    let out = d.run(&["clone", &url, d.path().join("w").to_str().unwrap()]);
    let err = assert_error(&out, &["certificate"]);
    assert!(!err.contains(&t));
    // The UI over HTTPS keeps the token in a Secure cookie (never sent over plain HTTP).
    let curl = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "--cacert", &ca])
        .arg(format!("{url}/runs?token={t}"))
        .output();
    if gyre_testkit::require("curl not installed: apt-get install curl", curl.is_ok()) {
        let head = stdout(&curl.unwrap());
        assert!(head.starts_with("HTTP/1.1 303"), "{head}");
        let cookie = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .unwrap_or_else(|| panic!("{head}"));
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
    }
    // Plain HTTP to the TLS port gets nothing.
    assert_ne!(
        api(&format!("127.0.0.1:{port}"), "GET", "/v1/health", None, b"").0,
        200
    );
    // Over TLS, a token is welcome from another address of this machine too (over plain HTTP
    // it would be refused).
    if let Some(ip) = outside {
        let mut e = Project::empty();
        e.env = vec![
            ("GYRE_TOKEN".into(), t.clone()),
            ("GYRE_CA_CERT".into(), ca.clone()),
        ];
        let out = e.run(&[
            "clone",
            &format!("https://{ip}:{port}"),
            e.path().join("w").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(stop(&mut server), Some(0));
}
