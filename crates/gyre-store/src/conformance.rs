//! What only the team store has to show: objects through the bucket and the cache, the
//! schema's versions, and what it refuses. (The operations both backends share are tested
//! where they are defined, through `testing::backends`.)

use crate::testing::{backends, team};
use crate::{Store, StoreError};
use gyre_core::ContentHash;

#[test]
fn every_operation_reads_back_what_it_wrote_on_both_backends() {
    for mut t in backends() {
        let store = &mut t.store;
        let name = t.backend;
        store
            .write(|tx| {
                tx.insert_dataset(&crate::DatasetRecord {
                    name: "d".into(),
                    schema: "{\"x\":1}".into(),
                    created_at: "t0".into(),
                })?;
                let e1 = tx.insert_edit(&crate::EditRecord {
                    id: 0,
                    dataset: "d".into(),
                    body: "{}".into(),
                    why: "w'; DROP TABLE edits; --".into(),
                    author: "ana".into(),
                    time: "t1".into(),
                    rows_affected: 3,
                })?;
                let e2 = tx.insert_edit(&crate::EditRecord {
                    id: 0,
                    dataset: "d".into(),
                    body: "{}".into(),
                    why: "é ünïcode \u{1F600}".into(),
                    author: "bo".into(),
                    time: "t2".into(),
                    rows_affected: 0,
                })?;
                assert_eq!(e2, e1 + 1, "{name}: edits are numbered in order");
                assert_eq!(tx.last_edit_id("d")?, Some(e2));
                assert_eq!(tx.last_edit_id("other")?, None);
                tx.insert_version(&crate::VersionRecord {
                    id: "v1".into(),
                    dataset: "d".into(),
                    seq: 0,
                    edit: Some(e1),
                    description: "first".into(),
                    created_at: "t1".into(),
                })?;
                let s1 = tx.insert_alias_event(&crate::AliasEvent {
                    seq: 0,
                    alias: "champion".into(),
                    run: "r".into(),
                    previous: None,
                    action: "promote".into(),
                    who: "ana".into(),
                    time: "t3".into(),
                    why: "better".into(),
                    forced: true,
                    gate: None,
                });
                // The run does not exist: the foreign key refuses the move, and the error
                // rolls the whole transaction back.
                s1.map(|_| ())
            })
            .expect_err("an alias must name a stored run");
        // The refused alias move rolled the whole transaction back.
        assert!(
            store.read(|tx| tx.datasets()).unwrap().is_empty(),
            "{name}: a failed transaction leaves nothing"
        );
        store
            .write(|tx| {
                tx.insert_dataset(&crate::DatasetRecord {
                    name: "d".into(),
                    schema: "{}".into(),
                    created_at: "t0".into(),
                })?;
                tx.put_cache("k", "oof", "obj", "t")?;
                tx.put_cache("k", "oof", "other", "t")?;
                let (f, new) = tx.upsert_finding(&crate::FindingRecord {
                    id: 0,
                    kind: "slice".into(),
                    key: "age > 50".into(),
                    title: "t".into(),
                    detail: "{}".into(),
                    run: "r".into(),
                    created_at: "t".into(),
                })?;
                assert!(new);
                let (again, new) = tx.upsert_finding(&crate::FindingRecord {
                    id: 0,
                    kind: "slice".into(),
                    key: "age > 50".into(),
                    title: "other".into(),
                    detail: "{}".into(),
                    run: "r".into(),
                    created_at: "t".into(),
                })?;
                assert_eq!((again, new), (f, false));
                tx.insert_finding_event(&crate::FindingEvent {
                    seq: 0,
                    finding: f,
                    state: "accepted".into(),
                    why: None,
                    who: "ana".into(),
                    time: "t".into(),
                    run: None,
                    edit: Some(7),
                })?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
            .read(|tx| {
                assert_eq!(tx.cache("k")?.as_deref(), Some("obj"), "{name}: first wins");
                assert_eq!(tx.caches_of_kind("oof")?.len(), 1);
                let ev = tx.finding_events()?;
                assert_eq!((ev[0].edit, ev[0].why.clone()), (Some(7), None));
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}

#[test]
fn team_objects_live_in_the_bucket_and_the_cache_refetches_them_checked() {
    let Some(team) = team() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = Store::init(dir.path(), &team.config_text()).unwrap();
    let store = Store::open(&root).unwrap();
    assert!(store.is_team());
    let bytes = b"a model, say".repeat(1000);
    let id = store.objects().put(&bytes).unwrap();
    // Another machine: a second project directory on the same team store, empty cache.
    let dir2 = tempfile::tempdir().unwrap();
    let root2 = Store::init(dir2.path(), &team.config_text()).unwrap();
    let other = Store::open(&root2).unwrap();
    assert!(!other.objects().path(&id).exists(), "nothing cached yet");
    assert_eq!(other.objects().get(&id).unwrap(), bytes);
    assert!(other.objects().path(&id).exists(), "cached on first read");
    assert_eq!(&other.objects().get_mapped(&id).unwrap()[..], &bytes[..]);
    assert_eq!(other.objects().list().unwrap(), vec![id.to_string()]);
    // A copy in the bucket damaged (replaced by other bytes under the same key) is refused,
    // and nothing damaged enters the cache.
    let fake = ContentHash::of(b"unrelated");
    let damaged = b"not the model".to_vec();
    other
        .objects()
        .remote()
        .unwrap()
        .put(&id, &damaged)
        .unwrap();
    let dir3 = tempfile::tempdir().unwrap();
    let root3 = Store::init(dir3.path(), &team.config_text()).unwrap();
    let third = Store::open(&root3).unwrap();
    let err = third.objects().get(&id).unwrap_err().to_string();
    assert!(err.contains("damaged"), "{err}");
    assert!(!third.objects().path(&id).exists());
    // A missing object is named.
    assert!(matches!(
        third.objects().get(&fake),
        Err(StoreError::MissingObject { .. })
    ));
    assert!(!third.objects().contains(&fake));
    assert!(third.objects().contains(&id), "the bucket has it");
}

#[test]
fn a_team_store_from_a_newer_gyre_is_refused_and_a_fresh_one_gets_the_schema() {
    let Some(team) = team() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = Store::init(dir.path(), &team.config_text()).unwrap();
    let db = team.metadata.rsplit('/').next().unwrap();
    let known = crate::pg::MIGRATIONS.len();
    assert_eq!(
        team.pg.psql(db, "SELECT version FROM gyre_schema").unwrap(),
        known.to_string()
    );
    team.pg
        .psql(db, "UPDATE gyre_schema SET version = 999")
        .unwrap();
    let err = Store::open(&root).err().unwrap().to_string();
    assert!(err.contains("newer gyre") && err.contains("999"), "{err}");
    assert!(!err.contains("gyre-test-password"));
    // Opening with a version this gyre knows runs nothing and works.
    team.pg
        .psql(db, &format!("UPDATE gyre_schema SET version = {known}"))
        .unwrap();
    Store::open(&root).unwrap();
}

#[test]
fn a_team_store_url_with_a_password_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[store]\nmetadata = \"postgres://gyre:hunter2@127.0.0.1:1/x\"\n\
                  objects = \"s3://b/p\"\n";
    let err = Store::init(dir.path(), config).unwrap_err().to_string();
    assert!(
        err.contains("PGPASSWORD") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!dir.path().join(crate::STATE_DIR).exists());
    assert!(!dir.path().join(crate::CONFIG_FILE).exists());
    let half = "[store]\nmetadata = \"postgres://gyre@127.0.0.1:1/x\"\n";
    let err = Store::init(dir.path(), half).unwrap_err().to_string();
    assert!(err.contains("needs both"), "{err}");
}

#[test]
fn an_unreachable_team_database_fails_init_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = gyre_testkit::free_port();
    let config = format!(
        "[store]\nmetadata = \"postgres://gyre@127.0.0.1:{port}/x\"\nobjects = \"s3://b/p\"\n\
         endpoint = \"http://127.0.0.1:{port}\"\n"
    );
    let err = Store::init(dir.path(), &config).unwrap_err().to_string();
    assert!(err.contains("connecting to postgres://127.0.0.1"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    // A directory the init made is not left behind either.
    let new = dir.path().join("new");
    assert!(Store::init(&new, &config).is_err());
    assert!(!new.exists());
}

/// A project with a row in every table, and objects.
fn fill(store: &mut Store) {
    let model = store.objects().put(b"model bytes").unwrap();
    let preds = store.objects().put(b"predictions").unwrap();
    store
        .write(|tx| {
            tx.insert_person(&crate::PersonRecord {
                name: "ana".into(),
                role: crate::Role::Maintainer,
                created_at: "t0".into(),
                created_by: "root".into(),
            })?;
            let (_, token) = crate::new_token("ana", "laptop", "t0")?;
            tx.insert_token(&token)?;
            tx.revoke_token(&token.id, "t1")?;
            tx.insert_dataset(&crate::DatasetRecord {
                name: "d".into(),
                schema: "{}".into(),
                created_at: "t0".into(),
            })?;
            tx.insert_source(&crate::SourceRecord {
                id: "s".into(),
                dataset: "d".into(),
                seq: 0,
                file_name: "a.csv".into(),
                options: "{}".into(),
                object: model.to_string(),
                rows: 10,
                first_row_id: 0,
                stats: "{}".into(),
                created_at: "t0".into(),
            })?;
            let e = tx.insert_edit(&crate::EditRecord {
                id: 0,
                dataset: "d".into(),
                body: "{\"k\":\"v\"}".into(),
                why: "why".into(),
                author: "ana".into(),
                time: "t1".into(),
                rows_affected: 1,
            })?;
            tx.insert_version(&crate::VersionRecord {
                id: "v".into(),
                dataset: "d".into(),
                seq: 0,
                edit: Some(e),
                description: "x".into(),
                created_at: "t1".into(),
            })?;
            tx.insert_seed_group(&crate::SeedGroupRecord {
                id: "g".into(),
                summary: "{}".into(),
                created_at: "t".into(),
            })?;
            for (i, at) in ["t2", "t2", "t1"].iter().enumerate() {
                tx.insert_run(&crate::RunRecord {
                    id: format!("r{i}"),
                    dataset: "d".into(),
                    version: "v".into(),
                    learner: "gbdt".into(),
                    params: format!("{{\"num_leaves\":{i},\"mode\":\"x\"}}"),
                    seed: u64::MAX - i as u64,
                    model: model.to_string(),
                    predictions: preds.to_string(),
                    metrics: format!("{{\"holdout\":{{\"auc\":0.{i}5,\"ok\":true}}}}"),
                    timings: "{}".into(),
                    info: "{}".into(),
                    seed_group: (i == 0).then(|| "g".to_string()),
                    created_at: at.to_string(),
                    created_by: "ana".into(),
                })?;
            }
            tx.insert_suite(&crate::SuiteRecord {
                name: "s".into(),
                dataset: "d".into(),
                definition: "{}".into(),
                created_at: "t".into(),
                author: "ana".into(),
            })?;
            tx.insert_alias_event(&crate::AliasEvent {
                seq: 0,
                alias: "champion".into(),
                run: "r1".into(),
                previous: None,
                action: "promote".into(),
                who: "ana".into(),
                time: "t".into(),
                why: "w".into(),
                forced: true,
                gate: Some("{}".into()),
            })?;
            tx.put_cache("k", "oof", &preds.to_string(), "t")?;
            let (f, _) = tx.upsert_finding(&crate::FindingRecord {
                id: 0,
                kind: "slice".into(),
                key: "k".into(),
                title: "t".into(),
                detail: "{}".into(),
                run: "r1".into(),
                created_at: "t".into(),
            })?;
            tx.insert_finding_event(&crate::FindingEvent {
                seq: 0,
                finding: f,
                state: "open".into(),
                why: Some("w".into()),
                who: "ana".into(),
                time: "t".into(),
                run: Some("r1".into()),
                edit: None,
            })?;
            tx.append_journal(&crate::NewJournalEntry {
                time: "t",
                user: "ana",
                command: "gyre edit",
                why: Some("w"),
                objects: &[model.to_string()],
            })?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn a_project_copies_to_the_team_store_and_back_losslessly() {
    let Some(team) = team() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut local = Store::open(&Store::init(&dir.path().join("a"), "").unwrap()).unwrap();
    fill(&mut local);
    let mut shared =
        Store::open(&Store::init(&dir.path().join("b"), &team.config_text()).unwrap()).unwrap();
    let report = local.copy_into(&mut shared, |_, _| {}).unwrap();
    assert_eq!(report.objects, 2);
    assert_eq!(report.rows["run_values"], 3 * (2 + 2 + 5));
    let mut back = Store::open(&Store::init(&dir.path().join("c"), "").unwrap()).unwrap();
    shared.copy_into(&mut back, |_, _| {}).unwrap();
    let a = local.read(|tx| tx.contents()).unwrap();
    assert_eq!(a, shared.read(|tx| tx.contents()).unwrap());
    assert_eq!(a, back.read(|tx| tx.contents()).unwrap());
    assert!(
        a.values().all(|rows| !rows.is_empty()),
        "every table had rows"
    );
    // Same order of runs, new ids continue after the copied ones, objects readable.
    for s in [&mut shared, &mut back] {
        let ids: Vec<String> = s
            .read(|tx| tx.runs())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["r2", "r0", "r1"]);
        let seq = s
            .write(|tx| {
                tx.append_journal(&crate::NewJournalEntry {
                    time: "t9",
                    user: "bo",
                    command: "gyre runs",
                    why: None,
                    objects: &[],
                })
            })
            .unwrap();
        assert_eq!(seq, 2);
        assert_eq!(
            s.objects().get(&ContentHash::of(b"model bytes")).unwrap(),
            b"model bytes"
        );
    }
    // A destination that holds anything is refused.
    let err = local
        .copy_into(&mut back, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a project"), "{err}");
}

#[test]
fn a_dropped_team_connection_is_made_again_for_the_next_transaction() {
    let Some(team) = team() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&Store::init(dir.path(), &team.config_text()).unwrap()).unwrap();
    fill(&mut store);
    let db = team.metadata.rsplit('/').next().unwrap();
    // The server ends this store's session (a restart, a failover, an idle timeout).
    team.pg
        .psql(
            "postgres",
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND application_name = 'gyre'"
            ),
        )
        .unwrap();
    // Ended asynchronously: wait until the server holds no session of it.
    for _ in 0..200 {
        let left = team
            .pg
            .psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'gyre'"
                ),
            )
            .unwrap();
        if left.trim() == "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Beginning the next transaction finds it gone and begins again on a new connection.
    assert_eq!(store.read(|tx| tx.runs()).unwrap().len(), 3);
    store
        .write(|tx| {
            tx.append_journal(&crate::NewJournalEntry {
                time: "t",
                user: "u",
                command: "gyre log",
                why: None,
                objects: &[],
            })
        })
        .unwrap();
}

#[test]
fn an_older_embedded_store_is_upgraded_in_one_step_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A project written by a gyre that knew the first six migrations, with a run in it.
    let root = dir.path().join("p");
    std::fs::create_dir_all(root.join(".gyre/objects")).unwrap();
    std::fs::write(root.join(crate::CONFIG_FILE), "").unwrap();
    let db = root.join(".gyre/gyre.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for sql in &crate::migrations::MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO datasets VALUES ('d', '{}', 't');
             INSERT INTO runs (id, dataset, version, learner, params, seed, model, predictions,
                               metrics, timings, info, seed_group, created_at, created_by)
             VALUES ('r', 'd', 'v', 'gbdt', '{\"num_leaves\":7}', 3, 'm', 'p',
                     '{\"holdout\":{\"auc\":0.9}}', '{}', '{}', NULL, 't', 'u');
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let mut store = Store::open(&root).unwrap();
    // Migration 7 filled run_values for the old run: it sorts and filters like a new one.
    let q = crate::RunsQuery {
        sort: crate::RunField::Metric("auc".into()),
        descending: true,
        filters: vec![crate::RunFilter {
            field: crate::RunField::Param("num_leaves".into()),
            op: crate::CompareOp::Eq,
            value: "7".into(),
        }],
        limit: 10,
        offset: 0,
    };
    assert_eq!(store.read(|tx| tx.runs_page(&q)).unwrap().runs[0].id, "r");
    drop(store);
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::migrations::MIGRATIONS.len() as i64);
    // A store from a newer gyre is refused, and left as it was.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = Store::open(&root).err().unwrap().to_string();
    assert!(err.contains("newer gyre") && err.contains("99"), "{err}");
}

#[test]
fn the_journal_pages_filters_and_names_the_same_on_both_backends() {
    for mut t in backends() {
        let store = &mut t.store;
        let name = t.backend;
        store
            .write(|tx| {
                for (i, (user, command, objects)) in [
                    ("ana", "gyre import a.csv", vec!["dataset:d".to_string()]),
                    (
                        "bo",
                        "gyre label-issues r",
                        vec!["kept-label:1".into(), "run:r".into()],
                    ),
                    ("ana", "gyre edit relabel", vec!["edit:1".into()]),
                    ("Zoe", "gyre label-issues s", vec!["kept-label:2".into()]),
                ]
                .into_iter()
                .enumerate()
                {
                    tx.append_journal(&crate::NewJournalEntry {
                        time: &format!("2026-12-0{}T00:00:00Z", i + 1),
                        user,
                        command,
                        why: Some("w"),
                        objects: &objects,
                    })?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let mut page = |q: crate::JournalQuery| {
            let p = store.read(|tx| tx.journal_page(&q)).unwrap();
            (p.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), p.total)
        };
        let all = crate::JournalQuery {
            limit: 2,
            ..Default::default()
        };
        assert_eq!(page(all.clone()), (vec![4, 3], 4), "{name}: newest first");
        assert_eq!(
            page(crate::JournalQuery {
                user: Some("ana".into()),
                limit: 10,
                ..Default::default()
            }),
            (vec![3, 1], 2),
            "{name}"
        );
        assert_eq!(
            page(crate::JournalQuery {
                command: Some("label-issues".into()),
                since: Some("2026-12-03".into()),
                limit: 10,
                ..Default::default()
            }),
            (vec![4], 1),
            "{name}"
        );
        assert_eq!(
            page(crate::JournalQuery {
                until: Some("2026-12-02".into()),
                limit: 10,
                offset: 0,
                ..Default::default()
            }),
            (vec![1], 1),
            "{name}"
        );
        let users = store.read(|tx| tx.journal_users()).unwrap();
        assert_eq!(users, ["Zoe", "ana", "bo"], "{name}: sorted by bytes");
        let kept = store.read(|tx| tx.journal_objects("kept-label:")).unwrap();
        assert_eq!(kept, ["kept-label:1", "kept-label:2"], "{name}");
    }
}

/// A team server's people and tokens, the same on both backends: a token is found by its hash
/// while live and never after its revocation; a token names a person who exists.
#[test]
fn people_and_tokens_on_both_backends() {
    for mut t in backends() {
        let store = &mut t.store;
        let name = t.backend;
        let (secret, token) = crate::new_token("ana", "laptop", "t1").unwrap();
        assert!(secret.starts_with("gyre_") && !token.hash.contains(&secret));
        store
            .write(|tx| {
                tx.insert_person(&crate::PersonRecord {
                    name: "ana".into(),
                    role: crate::Role::Member,
                    created_at: "t0".into(),
                    created_by: "root".into(),
                })?;
                tx.insert_token(&token)
            })
            .unwrap();
        let (found, person) = store
            .read(|tx| tx.token_holder(&crate::token_hash(&secret)))
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: the live token is found"));
        assert_eq!(
            (found.id.as_str(), person.role),
            (token.id.as_str(), crate::Role::Member)
        );
        assert!(
            store
                .read(|tx| tx.token_holder(&crate::token_hash("gyre_wrong")))
                .unwrap()
                .is_none()
        );
        // A token for nobody is refused by the store itself.
        let (_, stray) = crate::new_token("nobody", "x", "t1").unwrap();
        assert!(store.write(|tx| tx.insert_token(&stray)).is_err(), "{name}");
        assert!(
            store
                .write(|tx| tx.set_role("ana", crate::Role::Maintainer))
                .unwrap()
        );
        assert!(store.write(|tx| tx.revoke_token(&token.id, "t2")).unwrap());
        assert!(
            !store.write(|tx| tx.revoke_token(&token.id, "t3")).unwrap(),
            "{name}: once"
        );
        assert!(
            store
                .read(|tx| tx.token_holder(&crate::token_hash(&secret)))
                .unwrap()
                .is_none()
        );
        let listed = store.read(|tx| tx.tokens(Some("ana"))).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at.as_deref(), Some("t2"));
        // Listed tokens serialize without their hash.
        assert!(
            !serde_json::to_string(&listed)
                .unwrap()
                .contains(&token.hash)
        );
        assert_eq!(
            store.read(|tx| tx.person("ana")).unwrap().unwrap().role,
            crate::Role::Maintainer
        );
    }
}
