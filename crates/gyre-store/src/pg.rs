//! The team store's metadata in PostgreSQL: connecting (with libpq's environment and password
//! file, which the Rust client does not read), the schema and its migrations, and the locks
//! that make concurrent writers safe.
//!
//! Writers take one advisory lock for the length of their transaction, so writes to a project
//! are serialized as SQLite's are (a write transaction reads what the last one committed, and
//! an edit's number and version follow the edits before it). Readers take a repeatable-read
//! snapshot and no lock. Two projects in one database would share the lock, not their data:
//! a project is a database.

use crate::StoreError;
use postgres::config::Host;
use std::path::{Path, PathBuf};

/// The advisory lock every write transaction holds (an arbitrary constant: "gyre").
pub(crate) const WRITE_LOCK: i64 = 0x6779_7265;
/// The advisory lock a schema migration holds.
const MIGRATE_LOCK: i64 = 0x6779_7266;

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The URL without anything after the host that could carry a secret, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
            format!("{scheme}://{rest}")
        }
        None => "(a connection string)".into(),
    }
}

/// Parses a `postgres://` URL and refuses one that carries a password: passwords come from
/// `PGPASSWORD` or the password file, never from gyre.toml.
pub(crate) fn parse_url(url: &str) -> Result<postgres::Config, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Config(format!(
            "metadata location {} is not a postgres:// URL",
            redact(url)
        )));
    }
    let config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        StoreError::Config(format!("metadata location {}: {e}", redact(url)))
    })?;
    if config.get_password().is_some() {
        return Err(StoreError::Config(format!(
            "metadata location {} carries a password; gyre.toml must not hold one: give it in \
             PGPASSWORD or ~/.pgpass (PGPASSFILE) instead",
            redact(url)
        )));
    }
    Ok(config)
}

/// One line of a password file matches when each of its first four fields is `*` or equal.
fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // Fields split at unescaped colons; `\:` and `\\` are a literal colon and backslash.
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        fields.last_mut().expect("one field").push(n);
                    }
                }
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut().expect("one field").push(c),
            }
        }
        if fields.len() != 5 {
            continue;
        }
        let port = port.to_string();
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host)
            && ok(&fields[1], &port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

/// Connects with the URL's settings, completed as libpq completes them: `PGHOST`, `PGPORT`,
/// `PGUSER`, `PGDATABASE`, and the password from `PGPASSWORD` or the password file.
pub(crate) fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    let mut config = parse_url(url)?;
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(h) => {
                config.host(&h);
            }
            None if Path::new("/var/run/postgresql").is_dir() => {
                config.host_path("/var/run/postgresql");
            }
            None => {
                config.host("localhost");
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(p) = env("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(p);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env("PGDATABASE")
    {
        config.dbname(&db);
    }
    if let Some(p) = env("PGPASSWORD") {
        config.password(p);
    } else if let Some(p) = password_from_file(&config) {
        config.password(p);
    }
    config.application_name("gyre");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config
        .connect(postgres::NoTls)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Postgres(m) => {
                StoreError::Postgres(format!("connecting to {}: {m}", redact(url)))
            }
            e => e,
        })
}

fn password_from_file(config: &postgres::Config) -> Option<String> {
    let file = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    // As libpq: a file others can read is ignored.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&file).ok()?.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        // A socket connection matches `localhost` entries.
        Host::Unix(_) => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user()?;
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &host, port, db, user)
}

/// The PostgreSQL schema, by version; `gyre_schema` records the version a database has. The
/// first is the SQLite schema after its seven migrations, in PostgreSQL's types: integers
/// are `bigint`, reals `double precision`, flags `boolean`; ids that SQLite assigns are
/// identity columns; `runs.ord` is SQLite's implicit rowid (insertion order); text that is
/// sorted sorts by bytes (`COLLATE "C"`), as SQLite sorts it. Never edit a
/// released version: append one.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
    CREATE FUNCTION gyre_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
    CREATE TABLE datasets (
        name        TEXT PRIMARY KEY,
        schema      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE sources (
        id            TEXT PRIMARY KEY,
        dataset       TEXT NOT NULL REFERENCES datasets(name),
        seq           BIGINT NOT NULL,
        file_name     TEXT NOT NULL,
        options       TEXT NOT NULL,
        object        TEXT NOT NULL,
        rows          BIGINT NOT NULL,
        first_row_id  BIGINT NOT NULL,
        stats         TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        UNIQUE (dataset, seq)
    );
    CREATE TABLE edits (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        dataset        TEXT NOT NULL REFERENCES datasets(name),
        body           TEXT NOT NULL,
        why            TEXT NOT NULL,
        author         TEXT NOT NULL,
        time           TEXT NOT NULL,
        rows_affected  BIGINT NOT NULL
    );
    CREATE INDEX edits_by_dataset ON edits (dataset, id);
    CREATE TABLE versions (
        dataset     TEXT NOT NULL REFERENCES datasets(name),
        seq         BIGINT NOT NULL,
        id          TEXT NOT NULL,
        edit        BIGINT REFERENCES edits(id),
        description TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (dataset, seq)
    );
    CREATE INDEX versions_by_id ON versions (id);
    CREATE TRIGGER edits_append_only BEFORE UPDATE OR DELETE ON edits
        FOR EACH ROW EXECUTE FUNCTION gyre_append_only('edits are append-only');
    CREATE TRIGGER edits_no_truncate BEFORE TRUNCATE ON edits
        FOR EACH STATEMENT EXECUTE FUNCTION gyre_append_only('edits are append-only');
    CREATE TABLE journal (
        seq      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        time     TEXT NOT NULL,
        "user"   TEXT COLLATE "C" NOT NULL,
        command  TEXT NOT NULL,
        why      TEXT,
        objects  TEXT NOT NULL
    );
    CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
        FOR EACH ROW EXECUTE FUNCTION gyre_append_only('the journal is append-only');
    CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
        FOR EACH STATEMENT EXECUTE FUNCTION gyre_append_only('the journal is append-only');
    CREATE TABLE seed_groups (
        id          TEXT PRIMARY KEY,
        summary     TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id            TEXT COLLATE "C" PRIMARY KEY,
        dataset       TEXT NOT NULL REFERENCES datasets(name),
        version       TEXT NOT NULL,
        learner       TEXT NOT NULL,
        params        TEXT NOT NULL,
        seed          BIGINT NOT NULL,
        model         TEXT NOT NULL,
        predictions   TEXT NOT NULL,
        metrics       TEXT NOT NULL,
        timings       TEXT NOT NULL,
        info          TEXT NOT NULL,
        seed_group    TEXT REFERENCES seed_groups(id),
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL,
        ord           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE INDEX runs_by_created ON runs (created_at, ord);
    CREATE TABLE suites (
        name        TEXT PRIMARY KEY,
        dataset     TEXT NOT NULL REFERENCES datasets(name),
        definition  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        author      TEXT NOT NULL
    );
    CREATE TABLE alias_events (
        seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        alias      TEXT NOT NULL,
        run        TEXT NOT NULL REFERENCES runs(id),
        previous   TEXT REFERENCES runs(id),
        action     TEXT NOT NULL,
        who        TEXT NOT NULL,
        time       TEXT NOT NULL,
        why        TEXT NOT NULL,
        forced     BOOLEAN NOT NULL,
        gate       TEXT
    );
    CREATE TRIGGER alias_events_append_only BEFORE UPDATE OR DELETE ON alias_events
        FOR EACH ROW EXECUTE FUNCTION gyre_append_only('alias history is append-only');
    CREATE TRIGGER alias_events_no_truncate BEFORE TRUNCATE ON alias_events
        FOR EACH STATEMENT EXECUTE FUNCTION gyre_append_only('alias history is append-only');
    CREATE TABLE caches (
        key         TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        object      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE findings (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL UNIQUE,
        title       TEXT NOT NULL,
        detail      TEXT NOT NULL,
        run         TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE finding_events (
        seq      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        finding  BIGINT NOT NULL REFERENCES findings(id),
        state    TEXT NOT NULL,
        why      TEXT,
        who      TEXT NOT NULL,
        time     TEXT NOT NULL,
        run      TEXT,
        edit     BIGINT
    );
    CREATE TRIGGER finding_events_append_only BEFORE UPDATE OR DELETE ON finding_events
        FOR EACH ROW EXECUTE FUNCTION gyre_append_only('finding history is append-only');
    CREATE TRIGGER finding_events_no_truncate BEFORE TRUNCATE ON finding_events
        FOR EACH STATEMENT EXECUTE FUNCTION gyre_append_only('finding history is append-only');
    CREATE TABLE run_values (
        run    TEXT COLLATE "C" NOT NULL REFERENCES runs(id),
        field  TEXT NOT NULL,
        num    DOUBLE PRECISION,
        text   TEXT COLLATE "C"
    );
    CREATE INDEX run_values_by_num ON run_values (field, num, run);
    CREATE INDEX run_values_by_text ON run_values (field, text, run);
    CREATE INDEX run_values_by_run ON run_values (run);
"#,
    // 2: the people of a team server and their tokens (only hashes; see `people`).
    r#"
    CREATE TABLE people (
        name        TEXT COLLATE "C" PRIMARY KEY,
        role        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    );
    CREATE TABLE tokens (
        id          TEXT COLLATE "C" PRIMARY KEY,
        person      TEXT COLLATE "C" NOT NULL REFERENCES people(name),
        hash        TEXT NOT NULL UNIQUE,
        label       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
"#,
];

/// Brings the database's schema up to date in one transaction under the migration lock;
/// refuses a database a newer gyre wrote. `url` names it in messages.
pub(crate) fn migrate(client: &mut postgres::Client, url: &str) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    fn version(c: &mut impl postgres::GenericClient) -> Result<i64, StoreError> {
        let exists: bool = c
            .query_one("SELECT to_regclass('gyre_schema') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<i64> = c
            .query_one("SELECT max(version)::bigint FROM gyre_schema", &[])?
            .get(0);
        Ok(v.unwrap_or(0))
    }
    let too_new = |found: i64| StoreError::TooNew {
        path: PathBuf::from(redact(url)),
        found,
        known,
    };
    // Up to date (the usual case): no lock.
    let current = version(client)?;
    if current == known {
        return Ok(());
    }
    if current > known {
        return Err(too_new(current));
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    let current = version(&mut tx)?;
    if current > known {
        return Err(too_new(current));
    }
    if current == 0 {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS gyre_schema (version BIGINT NOT NULL)")?;
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.batch_execute(sql)?;
    }
    if current < known {
        tx.execute("DELETE FROM gyre_schema", &[])?;
        tx.execute("INSERT INTO gyre_schema (version) VALUES ($1)", &[&known])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_passwords_are_refused_and_never_echoed() {
        let e = parse_url("postgres://gyre:s3cret@db.internal:5432/team?sslmode=disable")
            .unwrap_err()
            .to_string();
        assert!(e.contains("PGPASSWORD"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(parse_url("postgres://gyre@db.internal/team").is_ok());
        assert!(parse_url("mysql://x").is_err());
        assert_eq!(
            redact("postgres://u:p@h:1/db?password=x"),
            "postgres://h:1/db"
        );
    }

    #[test]
    fn the_password_file_matches_fields_with_wildcards_and_escapes() {
        let text = "# team\n\
                    db.internal:5432:team:gyre:first\n\
                    *:*:*:ana:an\\:a\\\\pass\n\
                    localhost:5433:*:*:local\n";
        assert_eq!(
            pgpass_lookup(text, "db.internal", 5432, "team", "gyre").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "x", 1, "y", "ana").as_deref(),
            Some("an:a\\pass")
        );
        assert_eq!(
            pgpass_lookup(text, "localhost", 5433, "p", "q").as_deref(),
            Some("local")
        );
        assert_eq!(pgpass_lookup(text, "db.internal", 5432, "team", "bo"), None);
    }
}
