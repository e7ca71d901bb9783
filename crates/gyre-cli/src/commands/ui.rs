//! `gyre ui [--addr HOST:PORT] [--token]`: the project in a browser.

use crate::cli::Cli;
use crate::output;
use std::process::ExitCode;

/// The environment variable that sets the UI's token (instead of a generated one).
pub const TOKEN_ENV: &str = "GYRE_UI_TOKEN";

pub fn run(cli: &Cli, addr: &str, want_token: bool) -> anyhow::Result<ExitCode> {
    let app = super::open(cli)?;
    let root = app.root().to_path_buf();
    drop(app);
    let listener = super::serve::bind(addr)?;
    let bound = listener.local_addr()?;
    let from_env = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty());
    // Beyond loopback every request needs a token: from the environment, else a fresh one.
    let token = match from_env {
        Some(t) => Some(t),
        None if want_token || !bound.ip().is_loopback() => Some(fresh_token()?),
        None => None,
    };
    let ui = gyre_ui::Ui::new(
        &root,
        gyre_ui::UiOptions {
            token: token.clone(),
            people: None,
            https: false,
        },
    )?;
    let json = cli.json;
    gyre_ui::serve(ui, listener, || {
        let host = if bound.ip().is_unspecified() {
            format!("127.0.0.1:{}", bound.port())
        } else {
            bound.to_string()
        };
        // The address to open, with the token when there is one: it is printed once, here,
        // for the person who started the UI, and never logged.
        let url = match &token {
            Some(t) => format!("http://{host}/?token={t}"),
            None => format!("http://{host}/"),
        };
        if json {
            output::print(&format!(
                "{}\n",
                serde_json::json!({ "addr": bound.to_string(), "url": url, "token": token.is_some() })
            ));
        } else {
            output::print(&format!(
                "gyre ui on http://{bound} for {}\n  open {url}\n  {}Ctrl-C stops\n",
                root.display(),
                if token.is_some() {
                    "every request needs the token (the link sets it in a cookie); "
                } else {
                    "loopback only, no token; "
                }
            ));
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot serve the UI on {addr}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// 32 random hex characters from the OS.
fn fresh_token() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
