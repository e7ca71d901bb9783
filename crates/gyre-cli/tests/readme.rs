//! README's tour runs as pasted (issue 25): its `sh` block is taken from README.md and run in
//! bash line by line, at the repository's root as README says, with this build's `gyre` first on
//! the PATH. Every line must succeed, except where its comment says it exits 1. Two changes
//! are made, and only these: `cargo` lines are skipped (this test is itself run by cargo, and
//! the demo has its own test), and the server's port 8080 becomes a free one, so the test does
//! not depend on what else listens on this machine.

mod common;
use common::*;
use std::path::Path;

/// The fenced `sh` block under a README heading.
fn block_under(readme: &str, heading: &str) -> String {
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README lacks {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].to_string()
}

/// The block with each line that starts with one of `values`' prefixes set to that prefix
/// and its value (the lines that name a reader's own servers).
fn set_lines(block: &str, values: &[(&str, String)]) -> String {
    block
        .lines()
        .map(|l| match values.iter().find(|(p, _)| l.starts_with(p)) {
            Some((p, v)) => format!("{p}{v}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The block as a bash script that stops at the first line that fails (a line whose comment
/// says "exit 1 when" may exit 1, "exit 2 when" 2), with the count of commands in it.
fn script_of(block: &str, port: &str) -> (String, usize) {
    let bin_dir = Path::new(bin()).parent().unwrap();
    let mut script =
        String::from("cleanup() { kill $(jobs -p) 2>/dev/null; wait; }\ntrap cleanup EXIT\n");
    let mut commands = 0;
    for (n, line) in block.lines().enumerate() {
        let code = line.split("  #").next().unwrap().trim();
        if code.is_empty() || code.starts_with('#') || code.starts_with("cargo ") {
            continue;
        }
        let code = code
            .replace("$PWD/target/release", &bin_dir.display().to_string())
            .replace("8080", port);
        let allowed = if line.contains("exit 1 when") {
            "0|1"
        } else if line.contains("exit 2 when") {
            "0|2"
        } else {
            "0"
        };
        script.push_str(&format!(
            "{code}\nrc=$?; case $rc in {allowed}) ;; *) echo \"README line {}: exit $rc: {}\" >&2; exit 1;; esac\n",
            n + 1,
            code.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`")
        ));
        commands += 1;
    }
    (script, commands)
}

/// Runs a script from `script_of` at the repository's root, bounded so a server that never
/// comes up fails the test instead of hanging it.
fn run_script(script: &str, root: &Path) -> std::process::Output {
    run_script_with(script, root, &[])
}

fn run_script_with(script: &str, root: &Path, env: &[(String, String)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    std::process::Command::new("timeout")
        .args(["600", "bash", "-c"])
        .arg(script)
        .current_dir(root)
        .env("GYRE_USER", "readme")
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env_remove("GYRE_PROJECT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn has_curl() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_readme_tour_runs_as_pasted() {
    if !require("curl not installed: apt-get install curl", has_curl()) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let tour = block_under(&readme, "## A five-minute tour");
    let (script, commands) = script_of(&tour, &free_port().to_string());
    assert!(
        commands >= 20,
        "the tour shrank to {commands} commands:\n{tour}"
    );
    let out = run_script(&script, &root);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{e}");
    // The pasted request was answered, and its feedback recorded.
    assert!(o.contains("\"classes\":[\"<=50K\",\">50K\"]"), "{o}");
    assert!(o.contains("\"recorded\":true"), "{o}");
    assert!(o.contains("scored 48,842 rows"), "{o}");
}

/// README's turn with the scikit-learn challenger (issue 19): trained as a command learner,
/// compared with the gbdt champion, promoted through the gate and served from its ONNX model.
#[test]
fn the_readme_turn_with_the_sklearn_challenger_runs_as_pasted() {
    let python = std::process::Command::new("python3")
        .args([
            "-c",
            "import sklearn, skl2onnx, onnxruntime, pandas, pyarrow",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("curl not installed: apt-get install curl", has_curl())
        || !require(
            "scikit-learn, skl2onnx, onnxruntime, pandas or pyarrow not installed (see README)",
            python,
        )
    {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let turn = block_under(&readme, "## Any model joins the loop");
    let (script, commands) = script_of(&turn, &free_port().to_string());
    assert!(
        commands >= 12,
        "the turn shrank to {commands} commands:\n{turn}"
    );
    let out = run_script(&script, &root);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{e}");
    assert!(o.contains("command python3 learners/sklearn_hgb.py"), "{o}");
    assert!(o.contains("champion is now run"), "{o}");
    assert!(!o.contains("FORCED"), "{o}");
    assert!(o.contains("\"classes\":[\"<=50K\",\">50K\"]"), "{o}");
}

/// README's team store tour (issue 21), against a throwaway PostgreSQL database and a bucket on
/// moto's S3 server: the block as pasted, with its two lines naming the team's database and
/// bucket set to them, and the credentials in the environment, where README says they go.
#[test]
fn the_readme_team_store_tour_runs_against_real_servers() {
    let Some(team) = TeamStore::new() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = block_under(&readme, "## One project, many hands: the team store");
    let block = set_lines(
        &block,
        &[
            ("TEAM_DB=", team.metadata.clone()),
            ("TEAM_BUCKET=", team.objects.clone()),
        ],
    );
    let (script, commands) = script_of(&block, "0");
    assert!(commands >= 12, "the tour shrank to {commands} commands");
    let out = run_script_with(&script, &root, &team.env);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{e}");
    assert!(o.contains("joined the team's project"), "{o}");
    assert!(o.contains("minors are not our customers"), "{o}");
    assert!(o.contains("embedded store"), "{o}");
    assert!(!o.contains(gyre_testkit::PG_PASSWORD) && !e.contains(gyre_testkit::PG_PASSWORD));
}

/// README's team server tour (issue 22): a server, two people's clones, a refused promotion, a
/// serving replica whose traffic the team's monitor sees. The server's and the replica's ports
/// (8080, 8081) become free ones.
#[test]
fn the_readme_team_server_tour_runs_as_pasted() {
    if !require("curl not installed: apt-get install curl", has_curl()) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = block_under(&readme, "## The team server");
    let block = block.replace("8081", &free_port().to_string());
    let (script, commands) = script_of(&block, &free_port().to_string());
    assert!(commands >= 20, "the tour shrank to {commands} commands");
    let out = run_script(&script, &root);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{e}");
    assert!(o.contains("cloned http://127.0.0.1:"), "{o}");
    assert!(e.contains("bo is a member and may not"), "{e}");
    assert!(o.contains("\"classes\":[\"<=50K\",\">50K\"]"), "{o}");
    // The journal names the people the tokens belong to, never the name the shell claims.
    assert!(o.contains("Z  ana\n      gyre --project ana import"), "{o}");
    assert!(o.contains("Z  bo\n      gyre --project bo edit"), "{o}");
    assert!(o.contains("1 predictions answered"), "{o}");
}

/// README's tour beyond one machine (issue 23): a local sweep, then a sweep and label-issue
/// folds on a real Ray head (token auth on) for a project on the team store. The lines naming
/// the team's database and bucket and the cluster's address and token are set to the test's;
/// the cluster's nodes have this build's gyre (`GYRE_RAY_BINARY`: a debug build is too big to
/// send as a package).
#[test]
fn the_readme_ray_tour_runs_against_a_real_cluster() {
    let Some(team) = TeamStore::new() else { return };
    let Some(ray) = ray_head() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = block_under(&readme, "## Beyond one machine");
    let block = set_lines(
        &block,
        &[
            ("TEAM_DB=", team.metadata.clone()),
            ("TEAM_BUCKET=", team.objects.clone()),
            ("export GYRE_RAY_URL=", ray.url.clone()),
            ("export RAY_AUTH_TOKEN=", ray.token.clone()),
        ],
    );
    let (script, commands) = script_of(&block, "0");
    assert!(commands >= 10, "the tour shrank to {commands} commands");
    let mut env = team.env.clone();
    env.push(("GYRE_RAY_BINARY".into(), bin().into()));
    let out = run_script_with(&script, &root, &env);
    ray.stop();
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{o}\nstderr:\n{e}");
    assert!(o.contains("32 trial(s) of gbdt"), "{o}");
    assert!(o.contains("on local") && o.contains("on ray"), "{o}");
    assert!(o.contains("best (#"), "{o}");
    assert!(o.contains("training rows look mislabelled"), "{o}");
    assert!(!o.contains(&ray.token) && !e.contains(&ray.token));
}
