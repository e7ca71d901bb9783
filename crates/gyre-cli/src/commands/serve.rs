//! `gyre serve [--addr HOST:PORT] [--run REF] [--challenger REF (--split F | --shadow)]`.

use crate::cli::Cli;
use crate::output::{self, short};
use gyre_server::{Models, ServeOptions, Traffic};
use std::process::ExitCode;

/// What `gyre serve` was asked for.
pub struct ServeArgs<'a> {
    pub addr: &'a str,
    pub run: &'a str,
    pub challenger: Option<&'a str>,
    pub split: Option<f64>,
    pub shadow: bool,
    pub timeout: std::time::Duration,
    pub max_body: usize,
    /// A replica of this team server's project.
    pub remote: Option<&'a str>,
    pub dir: Option<&'a std::path::Path>,
}

pub fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let ServeArgs {
        addr,
        run,
        challenger,
        split,
        shadow,
        timeout,
        max_body,
        remote,
        dir,
    } = *args;
    let traffic = match (challenger, split, shadow) {
        (None, _, _) => None,
        (Some(_), Some(f), false) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(gyre_app::AppError::invalid(format!(
                    "--split {f}: expected a share between 0 and 1"
                ))
                .into());
            }
            Some(Traffic::Split(f))
        }
        (Some(_), None, true) => Some(Traffic::Shadow),
        (Some(_), _, _) => {
            return Err(gyre_app::AppError::invalid(
                "--challenger needs --split SHARE or --shadow",
            )
            .into());
        }
    };
    let mut app = match remote {
        Some(url) => replica(url, dir, addr)?,
        None => super::open(cli)?,
    };
    // A clone of a team server serves as a replica of it, whether made by --remote or by hand.
    let shipper = match app.server_url() {
        Some(_) => Some(app.start_shipping()?),
        None => None,
    };
    let champion = app.serving_model(run)?;
    let challenger_model = challenger.map(|c| app.serving_model(c)).transpose()?;
    // Bound before the log's session starts: a busy port fails here and uses up no session.
    let listener = bind(addr)?;
    let log = app.prediction_log_writer(
        &champion.run,
        challenger_model.as_ref().map(|c| c.run.as_str()),
        traffic.map(|t| t.to_string()).as_deref(),
    )?;
    let (id, challenger_id) = (
        champion.run.clone(),
        challenger_model.as_ref().map(|c| c.run.clone()),
    );
    let session = log.session;
    let replica_name = shipper.as_ref().map(|s| s.replica.clone());
    let json = cli.json;
    let options = ServeOptions {
        champion: run.to_string(),
        challenger: challenger.map(String::from),
        traffic,
        timeout,
        body_limit: max_body,
    };
    gyre_server::serve(
        app,
        Models::new(champion, challenger_model),
        log,
        options,
        listener,
        &|bound| {
            if json {
                // One line, so a supervising process can read the bound address when it is ready.
                output::print(&format!(
                    "{}\n",
                    serde_json::json!({
                        "addr": bound.to_string(),
                        "run": id,
                        "challenger": challenger_id,
                        "traffic": traffic.map(|t| t.to_string()),
                        "session": session,
                        "replica": replica_name,
                    })
                ));
            } else {
                let mut s = format!("serving champion {} on http://{bound}\n", short(&id));
                if let (Some(c), Some(t)) = (&challenger_id, traffic) {
                    s.push_str(&format!("  challenger {} ({t})\n", short(c)));
                }
                s.push_str("  POST /v1/predict  POST /v1/feedback  GET /v1/health  GET /metrics\n");
                match &replica_name {
                    Some(r) => s.push_str(&format!(
                        "  replica {r}: every answer is logged here (.gyre/log.db) and shipped to \
                         the team server, where `gyre monitor` reads every replica's; Ctrl-C stops\n"
                    )),
                    None => s.push_str(
                        "  every answer is logged (.gyre/log.db); `gyre monitor` reads it; Ctrl-C stops\n",
                    ),
                }
                output::print(&s);
            }
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot serve on {addr}: {e}"))?;
    // The log is committed: ship what is left.
    if let Some(s) = shipper {
        s.finish();
    }
    Ok(ExitCode::SUCCESS)
}

/// A serving replica's project: `dir`, else one per server and port under the user's cache,
/// made by cloning the server the first time and reused after (its log and its name survive
/// a restart, so what it logged while the server was away is shipped then).
fn replica(url: &str, dir: Option<&std::path::Path>, addr: &str) -> anyhow::Result<gyre_app::App> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache"))
                })
                .ok_or_else(|| {
                    anyhow::anyhow!("no HOME: give the replica a directory with --dir")
                })?;
            let name: String = format!("{url}-{addr}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            cache.join("gyre").join("replicas").join(name)
        }
    };
    if !dir.join(gyre_app::CONFIG_FILE).is_file() {
        gyre_app::clone_project(url, &dir, &super::command_line())?;
    }
    let app = gyre_app::App::open(
        gyre_app::ProjectLocation::Explicit(&dir),
        &super::command_line(),
    )?;
    let want = gyre_store_url(url);
    match app.server_url() {
        Some(have) if have == want => Ok(app),
        other => anyhow::bail!(gyre_app::AppError::invalid(format!(
            "{} is not a replica of {url} (it works on {})",
            dir.display(),
            other.unwrap_or_else(|| "a project of its own".into())
        ))),
    }
}

/// A server URL as a clone keeps it.
fn gyre_store_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// Binds the address, with a hint when it is taken or cannot be had.
pub(crate) fn bind(addr: &str) -> Result<std::net::TcpListener, gyre_app::AppError> {
    std::net::TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => Some(format!(
                "another process listens on {addr} (another gyre serve?): stop it, or pick \
                 another port, e.g. --addr {}, or port 0 for any free one",
                next_port(addr)
            )),
            std::io::ErrorKind::PermissionDenied => Some(
                "ports below 1024 need privileges: pick a port above 1023, e.g. --addr \
                 127.0.0.1:8080"
                    .into(),
            ),
            std::io::ErrorKind::AddrNotAvailable => Some(
                "that host is not an address of this machine: use 127.0.0.1 (this machine \
                 only) or 0.0.0.0 (every interface)"
                    .into(),
            ),
            _ => None,
        };
        gyre_app::AppError::Invalid {
            message: format!("cannot listen on {addr}: {e}"),
            hint,
        }
    })
}

/// The same host with the next port, for a hint.
fn next_port(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) => format!("{host}:{}", p.wrapping_add(1).max(1)),
            Err(_) => "127.0.0.1:0".into(),
        },
        None => "127.0.0.1:0".into(),
    }
}

/// A size in bytes: `1048576`, `512KiB`, `1MiB`, `2MB`, `1GiB` (cases and a space allowed).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1MiB, 512KiB or 1048576"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    let bytes = number * scale;
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(format!("{text:?}: expected between 1 byte and 1 TiB"));
    }
    Ok(bytes.round() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512 kib"), Ok(512 << 10));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn the_hint_names_the_next_port() {
        assert_eq!(next_port("127.0.0.1:8080"), "127.0.0.1:8081");
        assert_eq!(next_port("[::1]:9000"), "[::1]:9001");
        assert_eq!(next_port("nonsense"), "127.0.0.1:0");
    }
}
