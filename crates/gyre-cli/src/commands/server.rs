//! `gyre server` (the team server), `gyre server user|token ...` (its people and tokens: in
//! the server's project directly, or in a clone through the server) and `gyre clone URL DIR`.

use crate::cli::{Cli, ServerAction, ServerRunArgs, TokenAction, UserAction};
use crate::output;
use gyre_app::{Role, people};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    cli: &Cli,
    action: Option<&ServerAction>,
    args: &ServerRunArgs,
) -> anyhow::Result<ExitCode> {
    match action {
        None => serve(cli, args),
        Some(ServerAction::User { action }) => user(cli, action),
        Some(ServerAction::Token { action }) => token(cli, action),
    }
}

fn new_token_text(t: &people::NewToken, what: &str) -> String {
    format!(
        "{what} {} ({}), token {}\n  {}\n  shown once, never stored: give it to {} privately; they set GYRE_TOKEN to it\n  (or keep it in ~/.config/gyre/config.toml under [servers.\"URL\"] token = \"...\")\n",
        t.person, t.role, t.id, t.token, t.person
    )
}

fn user(cli: &Cli, action: &UserAction) -> anyhow::Result<ExitCode> {
    // The server's project directly, or a clone through the server (a maintainer's).
    let mut app = super::open(cli)?;
    match action {
        UserAction::Add { name, role } => {
            let role = Role::parse(role).expect("clap checked the role");
            let t = app.people_add(name, role)?;
            if cli.json {
                output::json(&t);
            } else {
                output::print(&new_token_text(&t, "added"));
            }
        }
        UserAction::List => {
            let list = app.people_list()?;
            if cli.json {
                output::json(&serde_json::json!({ "people": list }));
            } else if list.is_empty() {
                output::print(
                    "nobody yet: gyre server user add NAME --role maintainer adds the first\n",
                );
            } else {
                let mut s = String::new();
                for p in &list {
                    s.push_str(&format!(
                        "{:<24} {:<10} added {} by {}\n",
                        p.name, p.role, p.created_at, p.created_by
                    ));
                }
                output::print(&s);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(cli: &Cli, action: &TokenAction) -> anyhow::Result<ExitCode> {
    let mut app = super::open(cli)?;
    match action {
        TokenAction::Create { name, user, label } => {
            let t = app.token_create(name.as_deref().or(user.as_deref()), label)?;
            if cli.json {
                output::json(&t);
            } else {
                output::print(&new_token_text(&t, "new token for"));
            }
        }
        TokenAction::List { user } => {
            let list = app.token_list(user.as_deref())?;
            if cli.json {
                output::json(&serde_json::json!({ "tokens": list }));
            } else if list.is_empty() {
                output::print("no tokens\n");
            } else {
                let mut s = String::new();
                for t in &list {
                    s.push_str(&format!(
                        "{}  {:<20} {:<16} made {}{}\n",
                        t.id,
                        t.person,
                        t.label,
                        t.created_at,
                        t.revoked_at
                            .as_ref()
                            .map(|r| format!(", revoked {r}"))
                            .unwrap_or_default()
                    ));
                }
                output::print(&s);
            }
        }
        TokenAction::Revoke { id, user } => {
            let revoked = match (id, user) {
                (Some(id), _) => vec![app.token_revoke(id)?],
                (None, Some(user)) => app.tokens_revoke_of(user)?,
                (None, None) => unreachable!("clap requires one"),
            };
            if cli.json {
                output::json(&serde_json::json!({ "revoked": revoked }));
            } else if revoked.is_empty() {
                output::print("no live token to revoke\n");
            } else {
                let mut s = String::new();
                for t in &revoked {
                    s.push_str(&format!("revoked {} of {} ({})\n", t.id, t.person, t.label));
                }
                s.push_str("  refused from their next request on\n");
                output::print(&s);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(cli: &Cli, args: &ServerRunArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let dir = cli.project.clone().unwrap_or(cwd);
    // With --store and --objects: the team store's project, made or joined in DIR first.
    if let Some(team) = super::store::team_config(&args.store)
        && !dir.join(gyre_app::CONFIG_FILE).is_file()
    {
        gyre_app::init_with(&dir, &super::command_line(), Some(&team))?;
    }
    let app = gyre_app::App::open(
        gyre_app::ProjectLocation::Discover(&dir),
        &super::command_line(),
    )?;
    if app.server_url().is_some() {
        anyhow::bail!(gyre_app::AppError::invalid(format!(
            "{} is a clone of a team server: run gyre server where the project's store is",
            app.root().display()
        )));
    }
    let root = app.root().to_path_buf();
    drop(app);
    let service = gyre_app::TeamService::open(&root)?;
    let people_count = people::list(&root)?.len();
    let ui = gyre_ui::Ui::new(
        &root,
        gyre_ui::UiOptions {
            token: None,
            people: Some(service.clone()),
            https: args.tls_cert.is_some(),
        },
    )?;
    let listener = super::serve::bind(&args.addr)?;
    let bound = listener.local_addr()?;
    let json = cli.json;
    let options = gyre_team::TeamOptions {
        allow_plain_http: args.allow_plain_http,
        max_object: args.max_object,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(gyre_team::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
    };
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let tls = options.tls.is_some();
    // The UI's open projects are dropped here, after the server's runtime is gone (see
    // gyre_team::serve).
    let keep_ui = ui.clone();
    let served = gyre_team::serve(service, gyre_ui::router(ui), options, listener, || {
        let host = if bound.ip().is_unspecified() {
            format!("127.0.0.1:{}", bound.port())
        } else {
            bound.to_string()
        };
        let url = format!("{scheme}://{host}");
        if json {
            output::print(&format!(
                "{}\n",
                serde_json::json!({ "addr": bound.to_string(), "url": url, "project": root, "people": people_count })
            ));
        } else {
            let first = if people_count == 0 {
                "  nobody can sign in yet: gyre server user add NAME --role maintainer (here) prints their token\n"
            } else {
                ""
            };
            output::print(&format!(
                "gyre server on {url} for {}\n{first}  clone: GYRE_TOKEN=... gyre clone {url} DIR\n  UI: {url}/?token=TOKEN (kept in a cookie)\n  {}; Ctrl-C stops\n",
                root.display(),
                if tls {
                    "TLS: tokens welcome from any address"
                } else if args.allow_plain_http {
                    "tokens over plain HTTP from any address, as allowed"
                } else {
                    "tokens over plain HTTP only from this machine (--tls-cert and --tls-key, or a TLS proxy in front)"
                }
            ));
        }
    });
    drop(keep_ui);
    served.map_err(|e| anyhow::anyhow!("cannot serve on {}: {e}", args.addr))?;
    Ok(ExitCode::SUCCESS)
}

pub fn clone(cli: &Cli, url: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    let report = gyre_app::clone_project(url, dir, &super::command_line())?;
    if cli.json {
        output::json(&report);
    } else {
        output::print(&format!(
            "cloned {} into {} as {} ({})\n  every command works there; objects are fetched once into .gyre/objects\n\nnext: cd {} && gyre runs\n",
            report.server,
            report.project.display(),
            report.person,
            report.role,
            report.project.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
