//! `gyre.toml`: the project's settings, written with commented defaults by `gyre init`.

/// The text `gyre init` writes.
pub fn default_config() -> String {
    format!(
        r#"# gyre project settings. See `gyre --help`.
[project]
# Written by gyre {version}.
format = 1
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}
