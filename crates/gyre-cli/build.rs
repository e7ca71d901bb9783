//! Names the commit the binary was built from, for `gyre --version` (`unknown` outside a git
//! checkout, e.g. from a source archive).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GYRE_COMMIT={commit}");
    // Rebuilt when HEAD moves (a commit or a checkout), not on every build.
    let git = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    let mut watch = vec![git.join("HEAD"), git.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(branch) = head.trim().strip_prefix("ref: ")
    {
        watch.push(git.join(branch));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
