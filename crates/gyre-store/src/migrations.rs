//! Versioned schema migrations, applied in order inside one transaction; `PRAGMA user_version`
//! records how many have run. Never edit a released migration: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: datasets, sources, versions, the journal.
    r#"
    CREATE TABLE datasets (
        name        TEXT PRIMARY KEY,
        schema      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE sources (
        id            TEXT PRIMARY KEY,
        dataset       TEXT NOT NULL REFERENCES datasets(name),
        seq           INTEGER NOT NULL,
        file_name     TEXT NOT NULL,
        options       TEXT NOT NULL,
        object        TEXT NOT NULL,
        rows          INTEGER NOT NULL,
        first_row_id  INTEGER NOT NULL,
        stats         TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        UNIQUE (dataset, seq)
    );
    CREATE TABLE versions (
        id          TEXT PRIMARY KEY,
        dataset     TEXT NOT NULL REFERENCES datasets(name),
        seq         INTEGER NOT NULL,
        parent      TEXT REFERENCES versions(id),
        description TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        UNIQUE (dataset, seq)
    );
    CREATE TABLE journal (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        time     TEXT NOT NULL,
        user     TEXT NOT NULL,
        command  TEXT NOT NULL,
        why      TEXT,
        objects  TEXT NOT NULL
    );
    -- History is append-only: the database itself refuses to change or delete journal entries.
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    "#,
    // 2: runs, and seed groups (the seed-to-seed flip floor of one recipe).
    r#"
    CREATE TABLE seed_groups (
        id          TEXT PRIMARY KEY,
        summary     TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        dataset       TEXT NOT NULL REFERENCES datasets(name),
        version       TEXT NOT NULL REFERENCES versions(id),
        learner       TEXT NOT NULL,
        params        TEXT NOT NULL,
        seed          INTEGER NOT NULL,
        model         TEXT NOT NULL,
        predictions   TEXT NOT NULL,
        metrics       TEXT NOT NULL,
        timings       TEXT NOT NULL,
        info          TEXT NOT NULL,
        seed_group    TEXT REFERENCES seed_groups(id),
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL
    );
    CREATE INDEX runs_by_time ON runs (created_at);
    "#,
];
