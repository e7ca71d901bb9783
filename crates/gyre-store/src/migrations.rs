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
    -- Edits are never deleted or changed; `revert` is a new edit.
    CREATE TABLE edits (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset        TEXT NOT NULL REFERENCES datasets(name),
        body           TEXT NOT NULL,
        why            TEXT NOT NULL,
        author         TEXT NOT NULL,
        time           TEXT NOT NULL,
        rows_affected  INTEGER NOT NULL
    );
    -- The chain of versions of each dataset: one entry per import or edit. The same version id
    -- can appear twice (an edit and its revert lead back to an earlier version).
    CREATE TABLE versions (
        dataset     TEXT NOT NULL REFERENCES datasets(name),
        seq         INTEGER NOT NULL,
        id          TEXT NOT NULL,
        edit        INTEGER REFERENCES edits(id),
        description TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (dataset, seq)
    );
    CREATE INDEX versions_by_id ON versions (id);
    CREATE TRIGGER edits_no_update BEFORE UPDATE ON edits
        BEGIN SELECT RAISE(ABORT, 'edits are append-only'); END;
    CREATE TRIGGER edits_no_delete BEFORE DELETE ON edits
        BEGIN SELECT RAISE(ABORT, 'edits are append-only'); END;
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
        version       TEXT NOT NULL,
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
    // 3: suites (named evaluation sets with requirements).
    r#"
    CREATE TABLE suites (
        name        TEXT PRIMARY KEY,
        dataset     TEXT NOT NULL REFERENCES datasets(name),
        definition  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        author      TEXT NOT NULL
    );
    "#,
    // 4: alias moves (champion and any other name); the current target is the latest move.
    r#"
    CREATE TABLE alias_events (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        alias      TEXT NOT NULL,
        run        TEXT NOT NULL REFERENCES runs(id),
        previous   TEXT REFERENCES runs(id),
        action     TEXT NOT NULL,
        who        TEXT NOT NULL,
        time       TEXT NOT NULL,
        why        TEXT NOT NULL,
        forced     INTEGER NOT NULL,
        gate       TEXT
    );
    CREATE TRIGGER alias_events_no_update BEFORE UPDATE ON alias_events
        BEGIN SELECT RAISE(ABORT, 'alias history is append-only'); END;
    CREATE TRIGGER alias_events_no_delete BEFORE DELETE ON alias_events
        BEGIN SELECT RAISE(ABORT, 'alias history is append-only'); END;
    "#,
    // 5: caches of derived results (out-of-fold predictions), keyed by what determines them.
    r#"
    CREATE TABLE caches (
        key         TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        object      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    "#,
    // 6: findings to triage, their state changes, and the edits made to fix them.
    r#"
    CREATE TABLE findings (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL UNIQUE,
        title       TEXT NOT NULL,
        detail      TEXT NOT NULL,
        run         TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE finding_events (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        finding  INTEGER NOT NULL REFERENCES findings(id),
        state    TEXT NOT NULL,
        why      TEXT,
        who      TEXT NOT NULL,
        time     TEXT NOT NULL,
        run      TEXT,
        edit     INTEGER
    );
    CREATE TRIGGER finding_events_no_update BEFORE UPDATE ON finding_events
        BEGIN SELECT RAISE(ABORT, 'finding history is append-only'); END;
    CREATE TRIGGER finding_events_no_delete BEFORE DELETE ON finding_events
        BEGIN SELECT RAISE(ABORT, 'finding history is append-only'); END;
    "#,
    // 7: each run's holdout metrics, params and own fields (dataset, version, learner, who,
    // seed) as indexed rows, so the runs table sorts and filters by any of them in the store
    // (100,000 runs, one page: the runs rows are wide, a scan of them is slow), and runs by
    // creation time.
    r#"
    CREATE TABLE run_values (
        run    TEXT NOT NULL REFERENCES runs(id),
        field  TEXT NOT NULL,
        num    REAL,
        text   TEXT
    );
    CREATE INDEX run_values_by_num ON run_values (field, num, run);
    CREATE INDEX run_values_by_text ON run_values (field, text, run);
    CREATE INDEX run_values_by_run ON run_values (run);
    CREATE INDEX runs_by_created ON runs (created_at);
    INSERT INTO run_values (run, field, num, text)
        SELECT r.id, 'metrics.' || j.key,
               CASE WHEN j.type IN ('integer', 'real', 'true', 'false') THEN j.value END,
               CASE WHEN j.type NOT IN ('integer', 'real', 'true', 'false') THEN j.value END
        FROM runs r, json_each(r.metrics, '$.holdout') j;
    INSERT INTO run_values (run, field, num, text)
        SELECT r.id, 'params.' || j.key,
               CASE WHEN j.type IN ('integer', 'real', 'true', 'false') THEN j.value END,
               CASE WHEN j.type NOT IN ('integer', 'real', 'true', 'false') THEN j.value END
        FROM runs r, json_each(r.params) j;
    INSERT INTO run_values (run, field, num, text)
        SELECT id, 'run.dataset', NULL, dataset FROM runs
        UNION ALL SELECT id, 'run.version', NULL, version FROM runs
        UNION ALL SELECT id, 'run.learner', NULL, learner FROM runs
        UNION ALL SELECT id, 'run.who', NULL, created_by FROM runs
        UNION ALL SELECT id, 'run.seed', seed, NULL FROM runs;
    "#,
    // 8: the people of a team server and their tokens (only hashes; see `people`).
    r#"
    CREATE TABLE people (
        name        TEXT PRIMARY KEY,
        role        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    );
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        person      TEXT NOT NULL REFERENCES people(name),
        hash        TEXT NOT NULL UNIQUE,
        label       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    "#,
];
