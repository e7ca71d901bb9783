//! `gyre ui` over real HTTP on loopback: every page answers, each page's JSON is the CLI's
//! `--json` report, the runs table sorts and filters in the store, writes go through the same
//! app functions (journal, reasons, gate), and the security rules hold (token, same origin,
//! escaping of everything that came from data).

mod common;
use common::*;
use serde_json::Value;

/// A project with two runs on Adult, the first promoted.
fn project() -> (Project, String, String) {
    let p = Project::new();
    p.import_adult();
    let a = p.json(&["train", "-p", "num_iterations=40"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &a, "--why", "first model"]);
    let b = p.json(&["train", "-p", "num_iterations=40", "-p", "num_leaves=4"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    (p, a, b)
}

fn ui(p: &Project, extra: &[&str]) -> (Server, String) {
    let mut args = vec!["ui", "--addr", "127.0.0.1:0", "--json"];
    args.extend_from_slice(extra);
    let (server, addr, _) = spawn_ready(p, &args);
    (server, addr)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_with(addr, "GET", path, &[("Host", addr)], b"");
    (status, body)
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A form post from the UI's own page (same origin).
fn form(addr: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let origin = format!("http://{addr}");
    let (status, _, text) = http_with(
        addr,
        "POST",
        path,
        &[
            ("Host", addr),
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.join("&").as_bytes(),
    );
    (status, text)
}

fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn champion(p: &Project) -> String {
    p.json(&["aliases"])["aliases"][0]["run"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_page_answers_and_its_json_is_the_clis() {
    let (p, a, b) = project();
    let (_server, addr) = ui(&p, &[]);
    for path in [
        "/",
        "/runs",
        &format!("/runs/{a}"),
        "/runs/latest",
        "/runs/champion",
        &format!("/diff/{a}/{b}"),
        "/findings",
        "/data",
        "/rows/5",
        "/monitor",
        "/journal",
        "/assets/ui.css",
        "/assets/ui.js",
    ] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.is_empty(), "{path}");
    }
    // A run's page holds its metrics as `gyre show` gives them, and its curves.
    let shown = p.json(&["show", &b]);
    let page = get_json(&addr, &format!("/runs/{b}?format=json"));
    assert_eq!(page["show"], shown);
    let roc = page["curves"]["roc"].as_array().unwrap();
    assert!(roc.len() > 10 && roc.len() <= 200, "{}", roc.len());
    let html = get(&addr, &format!("/runs/{b}")).1;
    let auc = shown["metrics"]["holdout"]["auc"].as_f64().unwrap();
    assert!(
        html.contains(&format!(
            "data-suite=\"holdout\" data-metric=\"auc\">{auc:.4}<"
        )),
        "the page shows the run's auc {auc:.4}"
    );
    assert!(html.contains("<svg class=\"chart\" id=\"roc\""));
    assert!(html.contains("threshold "), "the threshold shows on hover");
    let confusion: u64 = page["curves"]["confusion"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, shown["rows"]["holdout"].as_u64().unwrap());

    // The diff page is `gyre diff` (timings aside) and the gate's verdict is `gyre gate`'s.
    let mut cli = p.json(&["diff", &a, &b, "--rows"]);
    let mut page = get_json(&addr, &format!("/diff/{a}/{b}?format=json"));
    cli.as_object_mut().unwrap().remove("timings");
    page["diff"].as_object_mut().unwrap().remove("timings");
    assert_eq!(page["diff"], cli);
    let gate = p.run(&["gate", &b, "--json"]);
    assert_eq!(
        page["gate"],
        serde_json::from_slice::<Value>(&gate.stdout).unwrap()
    );

    assert_eq!(
        get_json(&addr, "/findings?format=json"),
        p.json(&["findings"])
    );
    assert_eq!(
        get_json(&addr, "/rows/5?format=json"),
        p.json(&["why", "5"])
    );
    let versions = get_json(&addr, "/data?format=json");
    assert_eq!(versions["versions"], p.json(&["data", "--versions"]));

    // The journal page is the journal, newest first.
    let log = p.json(&["log"]);
    let page = get_json(&addr, "/journal?format=json&limit=1000");
    let mut entries = page["entries"].as_array().unwrap().clone();
    entries.reverse();
    assert_eq!(Value::Array(entries), log["entries"]);
    let only_promotes = get_json(&addr, "/journal?format=json&command=promote");
    assert_eq!(only_promotes["total"], 1);

    // Unknown runs and rows are 404s that name what was not found.
    let (status, body) = get(&addr, "/runs/ffffffffffff");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("run &quot;ffffffffffff&quot; not found"),
        "{body}"
    );
}

#[test]
fn the_runs_table_sorts_filters_and_pages_in_the_store() {
    let (p, a, b) = project();
    let (_server, addr) = ui(&p, &[]);
    let auc = |r: &str| {
        p.json(&["show", r])["metrics"]["holdout"]["auc"]
            .as_f64()
            .unwrap()
    };
    let (best, worst) = if auc(&a) >= auc(&b) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let page = get_json(&addr, "/runs?format=json&sort=-auc");
    assert_eq!(page["total"], 2);
    assert_eq!(page["runs"][0]["run"].as_str(), Some(best.as_str()));
    let page = get_json(&addr, "/runs?format=json&sort=auc");
    assert_eq!(page["runs"][0]["run"].as_str(), Some(worst.as_str()));
    // Filters: a param, a metric, the learner; one page of one run.
    let page = get_json(&addr, "/runs?format=json&where=num_leaves%20%3D%204");
    assert_eq!(page["total"], 1);
    assert_eq!(page["runs"][0]["run"].as_str(), Some(b.as_str()));
    let page = get_json(&addr, "/runs?format=json&where=auc%20%3E%202");
    assert_eq!(page["total"], 0);
    let page = get_json(
        &addr,
        "/runs?format=json&where=learner%20%3D%20gbdt&limit=1&offset=1",
    );
    assert_eq!(page["total"], 2);
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    // The CLI has the same query.
    let cli = p.json(&["runs", "--sort", "-auc", "--where", "learner = gbdt"]);
    assert_eq!(cli["runs"][0]["run"].as_str(), Some(best.as_str()));
    // A field that is not one is a 400 naming it, not SQL.
    let (status, body) = get(&addr, "/runs?where=x%27)%20OR%201%3D1%20--%20%3D%203");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a field of a run"), "{body}");
}

#[test]
fn promote_from_the_diff_page_runs_the_gate_and_forcing_needs_a_confirmation() {
    let (p, a, b) = project();
    let (_server, addr) = ui(&p, &[]);
    let path = format!("/diff/{a}/{b}/promote");
    let gate_passes = p.run(&["gate", &b]).status.code() == Some(0);
    // No reason: refused, nothing moved.
    let (status, body) = form(&addr, &path, &[("expected_champion", &a), ("why", "")]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(champion(&p), a);
    // The champion moved since the page was drawn: refused, nothing moved.
    let (status, body) = form(
        &addr,
        &path,
        &[
            ("expected_champion", &b),
            ("why", "better"),
            ("force", "no"),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the champion moved since this page was loaded"),
        "{body}"
    );
    assert_eq!(champion(&p), a);
    let (status, body) = form(
        &addr,
        &path,
        &[
            ("expected_champion", &a),
            ("why", "looks better"),
            ("force", "no"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    if gate_passes {
        assert!(body.contains("Promoted"), "{body}");
        assert_eq!(champion(&p), b);
        return;
    }
    assert!(body.contains("Not promoted: the gate failed"), "{body}");
    assert_eq!(champion(&p), a, "a failed gate moves nothing");
    // Forcing without the confirmation: refused.
    let (status, _) = form(
        &addr,
        &path,
        &[
            ("expected_champion", &a),
            ("why", "the business asked"),
            ("force", "yes"),
        ],
    );
    assert_eq!(status, 400);
    assert_eq!(champion(&p), a);
    let (status, body) = form(
        &addr,
        &path,
        &[
            ("expected_champion", &a),
            ("why", "the business asked"),
            ("force", "yes"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(champion(&p), b);
    let history = &p.json(&["aliases"])["aliases"][0]["history"];
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["forced"], true);
    assert_eq!(last["why"], "the business asked");
    let log = p.json(&["log"]);
    let entry = log["entries"].as_array().unwrap().last().unwrap();
    assert!(
        entry["command"]
            .as_str()
            .unwrap()
            .starts_with("gyre ui: promote"),
        "{entry}"
    );
}

#[test]
fn label_review_decisions_become_edits_and_findings_are_triaged() {
    let (p, _a, b) = project();
    let (_server, addr) = ui(&p, &[]);
    let page = get_json(&addr, &format!("/review/{b}?format=json&limit=10"));
    let issues = page["label_issues"]["issues"].as_array().unwrap();
    assert!(issues.len() >= 5, "{}", issues.len());
    let row = |i: usize| issues[i]["row"].as_u64().unwrap();
    let html = get(&addr, &format!("/review/{b}?limit=10")).1;
    assert!(html.contains(&format!("data-row=\"{}\"", row(0))));
    assert!(html.contains("<kbd>j</kbd>"), "the shortcuts are listed");
    let decisions = serde_json::json!({
        "why": "checked against the census forms",
        "decisions": [
            {"row": row(0), "decision": "relabel", "to": issues[0]["suggested"]},
            {"row": row(1), "decision": "relabel", "to": issues[1]["suggested"]},
            {"row": row(2), "decision": "keep"},
            {"row": row(3), "decision": "exclude"},
        ]
    });
    let origin = format!("http://{addr}");
    let headers = [
        ("Host", addr.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let apply = format!("/review/{b}/apply");
    // Without a reason nothing is applied.
    let (status, _, body) = http_with(
        &addr,
        "POST",
        &apply,
        &headers,
        serde_json::json!({"decisions": decisions["decisions"]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    let before = p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .len();
    let (status, _, body) = http_with(
        &addr,
        "POST",
        &apply,
        &headers,
        decisions.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["kept"], serde_json::json!([row(2)]));
    let versions = p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .clone();
    let made = versions.len() - before;
    assert!(made >= 2, "relabels and an exclude: {made} new versions");
    for v in &versions[before..] {
        assert_eq!(v["why"], "checked against the census forms");
    }
    let story = p.json(&["why", &row(0).to_string()]);
    assert_eq!(
        story["label_history"].as_array().unwrap().last().unwrap(),
        &issues[0]["suggested"]
    );
    let story = p.json(&["why", &row(3).to_string()]);
    assert_eq!(story["in_training"], false);
    let log = p.json(&["log"]);
    assert!(log["entries"].as_array().unwrap().iter().any(|e| {
        e["objects"]
            .as_array()
            .unwrap()
            .contains(&Value::String(format!("kept-label:adult:row {}", row(2))))
    }));
    // The review page shows each decision made.
    let html = get(&addr, &format!("/review/{b}?limit=10")).1;
    let suggested = issues[0]["suggested"].as_str().unwrap();
    let shown = suggested.replace('<', "&lt;").replace('>', "&gt;");
    assert!(
        html.contains(&format!("relabelled to {shown}")),
        "{suggested}"
    );
    assert!(html.contains("kept the given label"));
    assert!(html.contains("excluded"));

    // A finding accepted from the findings page, with its reason.
    let findings = p.json(&["findings"]);
    let open = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["state"] == "open")
        .expect("an open finding");
    let id = open["id"].as_i64().unwrap();
    let (status, _) = form(
        &addr,
        &format!("/findings/{id}/decide"),
        &[("decision", "accept"), ("why", "known, rare")],
    );
    assert_eq!(status, 303);
    let after = p.json(&["findings"]);
    let f = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap();
    assert_eq!(f["state"], "accepted");
    assert_eq!(
        f["history"].as_array().unwrap().last().unwrap()["why"],
        "known, rare"
    );
}

#[test]
fn tokens_and_cross_site_posts_are_refused() {
    let (p, a, b) = project();
    let mut cmd = p.cmd(&["ui", "--addr", "127.0.0.1:0", "--json"]);
    cmd.env("GYRE_UI_TOKEN", "s3cret-token")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let server = Server(child);
    let ready: Value = serde_json::from_str(&first).unwrap();
    let addr = ready["addr"].as_str().unwrap().to_string();
    let host = [("Host", addr.as_str())];
    assert_eq!(http_with(&addr, "GET", "/", &host, b"").0, 401);
    assert_eq!(http_with(&addr, "GET", "/assets/ui.js", &host, b"").0, 401);
    let wrong = [("Host", addr.as_str()), ("Authorization", "Bearer nope")];
    assert_eq!(http_with(&addr, "GET", "/runs", &wrong, b"").0, 401);
    let right = [
        ("Host", addr.as_str()),
        ("Authorization", "Bearer s3cret-token"),
    ];
    assert_eq!(http_with(&addr, "GET", "/runs", &right, b"").0, 200);
    // A first visit with ?token= sets a cookie and drops the token from the address.
    let (status, head, _) = http_with(
        &addr,
        "GET",
        "/runs?token=s3cret-token&sort=-auc",
        &host,
        b"",
    );
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /runs?sort=-auc"), "{head}");
    assert!(head.contains("gyre_ui_token=s3cret-token; Path=/; HttpOnly; SameSite=Strict"));
    let cookie = [
        ("Host", addr.as_str()),
        ("Cookie", "gyre_ui_token=s3cret-token"),
    ];
    let (status, head, _) = http_with(&addr, "GET", "/", &cookie, b"");
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'")
    );
    // A cross-site form post is refused even with the cookie, and changes nothing.
    let evil = [
        ("Host", addr.as_str()),
        ("Cookie", "gyre_ui_token=s3cret-token"),
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let body = format!("expected_champion={a}&why=x&force=yes&confirm=yes");
    let (status, _, _) = http_with(
        &addr,
        "POST",
        &format!("/diff/{a}/{b}/promote"),
        &evil,
        body.as_bytes(),
    );
    assert_eq!(status, 403);
    assert_eq!(champion(&p), a);
    drop(server);
    // The token appears in no journal entry.
    let log = p.run(&["log", "--json"]);
    assert!(!String::from_utf8_lossy(&log.stdout).contains("s3cret-token"));
}

#[test]
fn markup_in_data_is_shown_as_text() {
    let p = Project::new();
    let mut csv = String::from("<script>alert(1)</script>,colour,label\n");
    let mut rng = Lcg::new(7);
    for i in 0..400 {
        let x = rng.next_f64();
        let colour = ["<img src=x onerror=alert(2)>", "\"quoted\" & co", "plain"][i % 3];
        let label = if x + 0.3 * rng.next_f64() > 0.6 {
            "<b>yes</b>"
        } else {
            "no"
        };
        csv.push_str(&format!(
            "{x},\"{}\",{label}\n",
            colour.replace('"', "\"\"")
        ));
    }
    let file = p.write("evil.csv", csv.as_bytes());
    let out = p.run(&["import", file.to_str().unwrap(), "--target", "label"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &run, "--why", "<script>alert(3)</script>"]);
    let (_server, addr) = ui(&p, &[]);
    for path in [
        "/",
        "/runs",
        &format!("/runs/{run}"),
        "/data",
        "/rows/1",
        "/journal",
        "/findings",
        &format!("/review/{run}"),
    ] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body.contains("<script>alert"),
            "{path} renders a script from data"
        );
        assert!(
            !body.contains("<img src=x"),
            "{path} renders an element from data"
        );
        assert!(
            !body.contains("<b>yes</b>"),
            "{path} renders markup from data"
        );
    }
    let (_, body) = get(&addr, "/data");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the column name shows as text"
    );
    let (_, body) = get(&addr, "/");
    assert!(
        body.contains("&lt;script&gt;alert(3)&lt;/script&gt;"),
        "the reason shows as text"
    );
}

#[test]
fn the_monitor_page_draws_the_monitors_numbers() {
    use std::io::Read;
    let (p, _a, _b) = project();
    // Serve 300 Adult holdout rows, then read the log through the UI.
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Value> = lines
        .filter(|l| l.ends_with(",test"))
        .take(300)
        .map(|l| {
            let mut m = serde_json::Map::new();
            for (k, v) in header.iter().zip(l.split(',')) {
                if *k == "income" || *k == "split" {
                    continue;
                }
                let value = match (v, v.parse::<f64>()) {
                    ("?", _) => Value::Null,
                    (_, Ok(x)) => serde_json::json!(x),
                    _ => serde_json::json!(v),
                };
                m.insert(k.to_string(), value);
            }
            Value::Object(m)
        })
        .collect();
    let (mut server, addr, _) = start(&p, &[]);
    for chunk in rows.chunks(100) {
        let (status, body) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": chunk }));
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(stop(&mut server), Some(0));
    let (_ui, addr) = ui(&p, &[]);
    let mut page = get_json(&addr, "/monitor?format=json");
    let mut cli = p.json(&["monitor"]);
    // The first reading opens the drift findings it finds; the second finds them open.
    assert!(!page["findings"]["new"].as_array().unwrap().is_empty());
    page.as_object_mut().unwrap().remove("findings");
    cli.as_object_mut().unwrap().remove("findings");
    assert!(
        page == cli,
        "the monitor page's JSON is gyre monitor --json"
    );
    assert_eq!(page["predictions"], 300);
    let (status, html) = get(&addr, "/monitor");
    assert_eq!(status, 200);
    // One histogram pair per feature, on the feature's bins.
    for f in cli["features"].as_array().unwrap() {
        let name = f["feature"].as_str().unwrap();
        let bins = f["bins"].as_array().unwrap().len();
        assert!(
            html.contains(&format!(
                "id=\"hist-{name}\" viewBox=\"0 0 560 220\" data-bins=\"{bins}\""
            )),
            "{name}: {bins} bins"
        );
    }
    // The percent view draws shares: the served bars of a feature add up to 100.
    let (_, html) = get(&addr, "/monitor?percent=1");
    assert!(html.contains("%</text>"), "the axis is in percent");
    let (_, overview) = get(&addr, "/");
    assert!(
        overview.contains("300 predictions"),
        "the overview has the monitor's summary"
    );
}

#[test]
fn regression_and_multiclass_runs_draw_their_own_plots() {
    let mut rng = Lcg::new(11);
    // Regression: y = 3x + noise.
    let p = Project::new();
    let mut csv = String::from("x,z,y\n");
    for _ in 0..600 {
        let (x, z) = (rng.next_f64(), rng.next_f64());
        csv.push_str(&format!("{x},{z},{}\n", 3.0 * x + 0.1 * rng.next_f64()));
    }
    let file = p.write("reg.csv", csv.as_bytes());
    p.json(&["import", file.to_str().unwrap(), "--target", "y"]);
    let run = p.json(&["train", "-p", "num_iterations=30"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let (_server, addr) = ui(&p, &[]);
    let page = get_json(&addr, &format!("/runs/{run}?format=json"));
    let holdout = page["show"]["rows"]["holdout"].as_u64().unwrap();
    let points = page["curves"]["predicted_vs_actual"].as_array().unwrap();
    assert_eq!(points.len() as u64, holdout);
    let residuals: u64 = page["curves"]["residuals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(residuals, holdout);
    assert!(page["curves"].get("roc").is_none());
    let (_, html) = get(&addr, &format!("/runs/{run}"));
    assert!(html.contains("id=\"predicted-actual\""));
    assert!(html.contains("id=\"residuals\""));
    assert!(!html.contains("id=\"confusion\""));

    // Multiclass: a 3x3 confusion matrix, no ROC.
    let p = Project::new();
    let mut csv = String::from("x,label\n");
    for _ in 0..600 {
        let x = rng.next_f64();
        let label = ["low", "mid", "high"][((x * 3.0) as usize).min(2)];
        csv.push_str(&format!("{x},{label}\n"));
    }
    let file = p.write("multi.csv", csv.as_bytes());
    p.json(&["import", file.to_str().unwrap(), "--target", "label"]);
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let (_server, addr) = ui(&p, &[]);
    let page = get_json(&addr, &format!("/runs/{run}?format=json"));
    let counts = page["curves"]["confusion"]["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 3);
    assert!(page["curves"].get("roc").is_none());
    assert!(page["curves"]["calibration"]["ece"].as_f64().unwrap() >= 0.0);
    let (_, html) = get(&addr, &format!("/runs/{run}"));
    assert!(
        html.contains("<th>high</th><th>low</th><th>mid</th>"),
        "classes in order"
    );
}
