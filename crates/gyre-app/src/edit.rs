//! `gyre edit`: a change to the data with a reason, making a new version. Each edit records its
//! author, time, what it selected and how many rows it changed; edits are never deleted.

use crate::{App, AppError, now};
use gyre_core::ContentHash;
use gyre_core::{ColumnRole, EditKind, Predicate, Task, closest};
use gyre_data::ImportOptions;
use gyre_store::{EditRecord, NewJournalEntry, SourceRecord, VersionRecord};
use serde::Serialize;

/// An edit as the user asked for it, before checking.
#[derive(Clone, Debug)]
pub enum EditSpec {
    Exclude {
        predicate: String,
    },
    Include {
        predicate: String,
    },
    Relabel {
        rows: Option<Vec<String>>,
        predicate: Option<String>,
        to: String,
        new_class: bool,
    },
    Weight {
        predicate: String,
        by: f64,
    },
    /// Append the rows of another file with the same columns, or with `key`, join its new columns.
    AddSource {
        path: std::path::PathBuf,
        key: Option<String>,
    },
    DropFeature {
        column: String,
    },
    /// A feature computed from each row's columns by a SQL expression.
    AddFeature {
        name: String,
        expr: String,
    },
    Revert {
        edit: i64,
    },
}

/// A derived feature as an add-feature edit made it.
#[derive(Serialize)]
pub struct DerivedFeature {
    pub name: String,
    /// The expression as stored (canonical SQL).
    pub expr: String,
    /// numeric, boolean or categorical, inferred from the expression.
    pub kind: &'static str,
    /// Categorical: its distinct values, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Rows where it is NULL (missing).
    pub missing: u64,
}

#[derive(Serialize)]
pub struct EditReport {
    pub edit: i64,
    pub kind: &'static str,
    pub description: String,
    pub dataset: String,
    pub version: String,
    pub previous_version: String,
    pub rows_affected: u64,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<DerivedFeature>,
    /// A join: the dataset's rows that found no match in the new file (their new columns are
    /// missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched_rows: Option<u64>,
}

fn invalid(message: String) -> AppError {
    AppError::invalid(message)
}

impl App {
    pub fn edit(
        &mut self,
        dataset: Option<&str>,
        spec: &EditSpec,
        why: Option<&str>,
    ) -> Result<EditReport, AppError> {
        self.edit_noting(dataset, spec, why, &[])
    }

    /// An edit whose journal entry also names `noted` (e.g. the feedback an import took).
    ///
    /// The edit is worked out from the dataset as it is (its edits, its current version) and
    /// recorded in one write transaction that first checks no other edit of the dataset came
    /// in between; if one did (two people editing at once), the edit is worked out again on
    /// top of it, so each gets its number in order and each version id is that of its chain.
    pub(crate) fn edit_noting(
        &mut self,
        dataset: Option<&str>,
        spec: &EditSpec,
        why: Option<&str>,
        noted: &[String],
    ) -> Result<EditReport, AppError> {
        let why = crate::require_why(
            why,
            "every edit",
            Some("say why, e.g. --why \"rows from the 2019 outage are noise\""),
        )?;
        let dataset = self.resolve_dataset(dataset)?;
        const ATTEMPTS: usize = 32;
        for _ in 0..ATTEMPTS {
            if let Some(report) = self.edit_attempt(&dataset, spec, why, noted)? {
                return Ok(report);
            }
        }
        Err(AppError::Invalid {
            message: format!(
                "dataset {dataset} changed under this edit {ATTEMPTS} times in a row (others are \
                 editing it)"
            ),
            hint: Some("run the edit again".into()),
        })
    }

    /// One try of an edit: `None` when another edit of the dataset was recorded after this one
    /// read it.
    fn edit_attempt(
        &mut self,
        dataset: &str,
        spec: &EditSpec,
        why: &str,
        noted: &[String],
    ) -> Result<Option<EditReport>, AppError> {
        let dataset = dataset.to_string();
        // Read before the version: an edit recorded after this read, even one the version
        // below already holds, makes the write below start over.
        let past = self.edits_upto(&dataset, None)?;
        let last_seen = past.last().map(|e| e.id);
        let current = self.load_version(&dataset, None)?;
        let previous_version = current.version.clone();
        let schema = current.schema.clone();
        let mut data = current.data;
        let parse = |text: &str| {
            Predicate::parse_checked(text, &schema).map_err(|e| AppError::Invalid {
                message: format!("--where: {e}"),
                hint: e.hint(),
            })
        };
        let mut pending_source: Option<(SourceRecord, Vec<u8>)> = None;
        let mut appended = 0;
        // A join: the dataset's rows that found no row of the new file.
        let mut unmatched = None;
        let kind = match spec {
            EditSpec::AddSource {
                path,
                key: Some(key),
            } => {
                let (sources, opts) = self.sources_and_options(&dataset)?;
                let key = key.split(',').map(str::trim).collect::<Vec<_>>().join(",");
                for part in key.split(',') {
                    if part.is_empty() || schema.column(part).is_none() {
                        return Err(AppError::NotFound {
                            what: "key column",
                            name: part.to_string(),
                            suggestion: gyre_core::closest(part, schema.column_names())
                                .map(String::from),
                        });
                    }
                }
                let key = &key;
                let na = opts
                    .na
                    .clone()
                    .map(gyre_data::infer::NaTokens::new)
                    .unwrap_or_default();
                let table = gyre_data::version::read_for_join(path, &na)?;
                appended = data.join(&table, key).map_err(|e| AppError::Invalid {
                    message: format!("{}: {}", path.display(), e.0),
                    hint: Some("a join adds new columns, matched on the key".into()),
                })?;
                unmatched = Some(data.batch.num_rows() as u64 - appended);
                let file_hash = crate::import::hash_file(path)?;
                let source_id = ContentHash::of_parts(&[
                    b"gyre-join-v1",
                    file_hash.as_str().as_bytes(),
                    key.as_bytes(),
                ])
                .to_string();
                if sources.iter().any(|s| s.id == source_id) {
                    return Err(invalid(format!(
                        "{} was already joined to {dataset} on {key}",
                        path.display()
                    )));
                }
                pending_source = Some((
                    SourceRecord {
                        id: source_id.clone(),
                        dataset: dataset.clone(),
                        seq: sources.len() as i64,
                        file_name: path
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default(),
                        options: serde_json::json!({ "join_key": key }).to_string(),
                        object: String::new(),
                        rows: table.num_rows() as u64,
                        first_row_id: 0,
                        stats: "{}".into(),
                        created_at: now(),
                    },
                    gyre_data::table::to_parquet(&table)?,
                ));
                EditKind::AddSource {
                    source: source_id,
                    rows: appended,
                    key: Some(key.clone()),
                }
            }
            EditSpec::AddSource { path, key: None } => {
                let (sources, mut opts) = self.sources_and_options(&dataset)?;
                let first_task = opts.task;
                // Row ids continue after every row any source ever had: never reused.
                opts.first_row_id = sources
                    .iter()
                    .map(|s| s.first_row_id + s.rows)
                    .max()
                    .unwrap_or(0);
                opts.appending = true;
                opts.task = Some(schema.task);
                let options_json = serde_json::to_string(&opts).expect("options serialize");
                // A source is named as `import` names it (first row id 0), so the same file
                // added twice, or the imported file itself, is recognized.
                let identity = serde_json::to_string(&ImportOptions {
                    first_row_id: 0,
                    appending: false,
                    task: first_task,
                    ..opts.clone()
                })
                .expect("options serialize");
                let file_hash = crate::import::hash_file(path)?;
                let source_id = ContentHash::of_parts(&[
                    b"gyre-source-v1",
                    file_hash.as_str().as_bytes(),
                    identity.as_bytes(),
                ])
                .to_string();
                if sources.iter().any(|s| s.id == source_id) {
                    return Err(invalid(format!(
                        "{} was already added to {dataset} with these options",
                        path.display()
                    )));
                }
                let imported = gyre_data::import(path, &opts, &|_| {})?;
                appended = data
                    .append(&imported.batch, &imported.schema)
                    .map_err(|e| AppError::Invalid {
                        message: format!("{}: {}", path.display(), e.0),
                        hint: Some("add-source appends rows with the dataset's columns".into()),
                    })?;
                let bytes = gyre_data::table::to_parquet(&imported.batch)?;
                pending_source = Some((
                    SourceRecord {
                        id: source_id.clone(),
                        dataset: dataset.clone(),
                        seq: sources.len() as i64,
                        file_name: path
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default(),
                        options: options_json,
                        object: String::new(),
                        rows: imported.batch.num_rows() as u64,
                        first_row_id: opts.first_row_id,
                        stats: serde_json::to_string(&imported.stats).expect("stats serialize"),
                        created_at: now(),
                    },
                    bytes,
                ));
                EditKind::AddSource {
                    source: source_id,
                    rows: appended,
                    key: None,
                }
            }
            EditSpec::Exclude { predicate } => EditKind::Exclude {
                predicate: parse(predicate)?,
            },
            EditSpec::Include { predicate } => EditKind::Include {
                predicate: parse(predicate)?,
            },
            EditSpec::Weight { predicate, by } => {
                if !(by.is_finite() && *by > 0.0) {
                    return Err(invalid(format!("--by must be a positive number, got {by}")));
                }
                EditKind::Weight {
                    predicate: parse(predicate)?,
                    by: *by,
                }
            }
            EditSpec::DropFeature { column } => {
                let col = schema.column(column).ok_or_else(|| AppError::NotFound {
                    what: "column",
                    name: column.clone(),
                    suggestion: closest(column, schema.column_names()).map(String::from),
                })?;
                if col.role != ColumnRole::Feature {
                    return Err(invalid(format!(
                        "column \"{column}\" is the {} column, not a feature",
                        format!("{:?}", col.role).to_lowercase()
                    )));
                }
                if !data.is_feature(column) {
                    return Err(invalid(format!("feature \"{column}\" is already dropped")));
                }
                EditKind::DropFeature {
                    column: column.clone(),
                }
            }
            EditSpec::AddFeature { name, expr } => {
                let name = name.trim();
                if name.is_empty() || name == gyre_core::ROW_ID || name == gyre_core::SPLIT {
                    return Err(invalid(format!(
                        "\"{name}\" cannot name a feature (empty, or a column gyre keeps)"
                    )));
                }
                if schema.column(name).is_some() {
                    return Err(AppError::Invalid {
                        message: format!("column \"{name}\" already exists"),
                        hint: Some("choose another name for the derived feature".into()),
                    });
                }
                let expr_error = |e: gyre_core::ExprError| AppError::Invalid {
                    message: format!("--expr: {e}"),
                    hint: e.hint(),
                };
                let (parsed, kind) =
                    gyre_core::Expr::parse_checked(expr, &schema).map_err(expr_error)?;
                if parsed.columns().contains(&schema.target.as_str()) {
                    return Err(AppError::Invalid {
                        message: format!(
                            "--expr reads the target \"{}\": a feature made from the label \
                             leaks it into training",
                            schema.target
                        ),
                        hint: None,
                    });
                }
                match kind {
                    gyre_core::ExprKind::Time => {
                        return Err(AppError::Invalid {
                            message: format!("--expr {parsed} is a time, which is not a feature"),
                            hint: Some(
                                "take a part of it: EXTRACT(hour|dow|day|month|year FROM t)".into(),
                            ),
                        });
                    }
                    gyre_core::ExprKind::Null => {
                        return Err(invalid(format!("--expr {parsed} is always NULL")));
                    }
                    _ => {}
                }
                EditKind::AddFeature {
                    name: name.to_string(),
                    expr: parsed,
                }
            }
            EditSpec::Revert { edit } => {
                let target = past.iter().find(|e| e.id == *edit).ok_or_else(|| {
                    invalid(format!("edit #{edit} does not exist in dataset {dataset}"))
                })?;
                // A derived feature that later edits read cannot go before them.
                if let EditKind::AddFeature { name, .. } = &target.kind {
                    let effective = gyre_core::edit::effective(&past);
                    if let Some(user) = effective
                        .iter()
                        .filter(|e| e.id > *edit)
                        .find(|e| reads_column(&e.kind, name))
                    {
                        return Err(AppError::Invalid {
                            message: format!(
                                "edit #{} ({}) reads the feature \"{name}\" that edit #{edit} \
                                 adds",
                                user.id,
                                user.kind.describe()
                            ),
                            hint: Some(format!("revert edit #{} first", user.id)),
                        });
                    }
                    let suites = self.store.read(|tx| tx.suites())?;
                    for r in suites.iter().filter(|r| r.dataset == dataset) {
                        let suite = crate::suites::suite_of(r)?;
                        if suite
                            .definition
                            .predicate
                            .as_ref()
                            .is_some_and(|p| p.columns().contains(&name.as_str()))
                        {
                            return Err(AppError::Invalid {
                                message: format!(
                                    "suite {} reads the feature \"{name}\" that edit #{edit} adds",
                                    suite.name
                                ),
                                hint: Some(
                                    "a suite is kept for ever; keep the feature, or drop it from \
                                     training with gyre edit drop-feature"
                                        .into(),
                                ),
                            });
                        }
                    }
                }
                if matches!(target.kind, EditKind::Revert { .. }) {
                    return Err(invalid(format!(
                        "edit #{edit} is itself a revert; to redo the original edit, make it again"
                    )));
                }
                if past
                    .iter()
                    .any(|e| matches!(e.kind, EditKind::Revert { edit: r } if r == *edit))
                {
                    return Err(invalid(format!("edit #{edit} is already reverted")));
                }
                EditKind::Revert { edit: *edit }
            }
            EditSpec::Relabel {
                rows,
                predicate,
                to,
                new_class,
            } => {
                match schema.task {
                    Task::Regression => {
                        if to.trim().parse::<f64>().map(f64::is_finite) != Ok(true) {
                            return Err(invalid(format!(
                                "--to '{to}' is not a number; this dataset's task is regression"
                            )));
                        }
                    }
                    _ => {
                        if !schema.classes.contains(to) && !new_class {
                            return Err(AppError::Invalid {
                                message: format!(
                                    "--to '{to}' is not one of the classes ({})",
                                    schema.classes.join(", ")
                                ),
                                hint: Some(
                                    "to add a new class on purpose, pass --new-class".into(),
                                ),
                            });
                        }
                    }
                }
                let rows = match rows {
                    Some(ids) => Some(self.resolve_rows(&data, &schema, ids)?),
                    None => None,
                };
                let predicate = predicate.as_deref().map(parse).transpose()?;
                if rows.is_none() && predicate.is_none() {
                    return Err(invalid("relabel needs --rows IDS or --where PRED".into()));
                }
                EditKind::Relabel {
                    rows,
                    predicate,
                    to: to.trim().to_string(),
                }
            }
        };

        // What the edit changes: apply it to the current version (a revert recomputes the whole chain).
        let rows_affected = match &kind {
            EditKind::AddSource { .. } => appended,
            EditKind::Revert { edit } => past
                .iter()
                .find(|e| e.id == *edit)
                .map_or(0, |e| e.rows_affected),
            k => data.apply(k)?,
        };
        let mut all = past.clone();
        all.push(gyre_core::Edit {
            id: i64::MAX,
            dataset: dataset.clone(),
            kind: kind.clone(),
            why: why.to_string(),
            author: self.user.clone(),
            time: String::new(),
            rows_affected,
        });
        let first_source = self
            .store
            .read(|tx| tx.sources(&dataset))?
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let effective: Vec<&EditKind> = gyre_core::edit::effective(&all)
            .into_iter()
            .map(|e| &e.kind)
            .collect();
        let version = gyre_core::edit::version_id(&first_source, &effective).to_string();
        let time = now();
        let description = kind.describe();
        let feature = match &kind {
            EditKind::AddFeature { name, expr } => {
                data.schema.column(name).map(|c| DerivedFeature {
                    name: name.clone(),
                    expr: expr.to_string(),
                    kind: c.kind.as_str(),
                    categories: c.categories.clone(),
                    missing: data.batch.num_rows() as u64 - rows_affected,
                })
            }
            _ => None,
        };
        let (user, command) = (self.user.clone(), self.command.clone());
        let fixing = self.fixing_findings()?;
        if let Some((rec, bytes)) = &mut pending_source {
            rec.object = self.store.objects().put(bytes)?.to_string();
        }
        let id = self.store.write(|tx| {
            if tx.last_edit_id(&dataset)? != last_seen {
                return Ok(None);
            }
            if let Some((rec, _)) = &pending_source {
                tx.insert_source(rec)?;
            }
            let id = tx.insert_edit(&EditRecord {
                id: 0,
                dataset: dataset.clone(),
                body: serde_json::to_string(&kind).expect("edits serialize"),
                why: why.to_string(),
                author: user.clone(),
                time: time.clone(),
                rows_affected,
            })?;
            tx.insert_version(&VersionRecord {
                id: version.clone(),
                dataset: dataset.clone(),
                // Counted under the write lock, so two edits at once cannot take the same.
                seq: tx.version_count(&dataset)?,
                edit: Some(id),
                description: description.clone(),
                created_at: time.clone(),
            })?;
            tx.append_journal(&NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: Some(why),
                objects: &[
                    &[format!("edit:{id}"), format!("version:{version}")][..],
                    noted,
                ]
                .concat(),
            })?;
            // The findings being fixed are linked to the edit in the same transaction.
            crate::findings::link_edit(tx, id, &fixing, &user, &time)?;
            Ok::<_, AppError>(Some(id))
        })?;
        let Some(id) = id else {
            return Ok(None);
        };
        if let Some((rec, _)) = &pending_source
            && let Some(object) = gyre_core::ContentHash::parse(&rec.object)
        {
            // As at import: the added table's decoded form, cached for the commands that follow.
            let _ = self.stored_table(&object);
        }
        Ok(Some(EditReport {
            edit: id,
            kind: kind.name(),
            description,
            dataset,
            version,
            previous_version,
            rows_affected,
            why: why.to_string(),
            feature,
            unmatched_rows: unmatched,
        }))
    }

    /// Row ids (or keys of the `--id-column`) to row ids, naming any that do not exist.
    pub(crate) fn resolve_rows(
        &mut self,
        data: &gyre_data::version::Materialized,
        schema: &gyre_core::DatasetSchema,
        tokens: &[String],
    ) -> Result<Vec<u64>, AppError> {
        let ids = gyre_data::table::row_ids(&data.batch);
        let keys: Option<std::collections::HashMap<String, u64>> =
            schema.id_column.as_ref().map(|c| {
                let a = data.batch.column_by_name(c).expect("id column in table");
                (0..a.len())
                    .map(|r| (gyre_data::table::display_value(a.as_ref(), r), ids[r]))
                    .collect()
            });
        let mut out = Vec::with_capacity(tokens.len());
        for t in tokens {
            let t = t.trim();
            let by_key = keys.as_ref().and_then(|k| k.get(t).copied());
            let by_id = t
                .parse::<u64>()
                .ok()
                .filter(|id| ids.binary_search(id).is_ok());
            match by_key.or(by_id) {
                Some(id) => out.push(id),
                None => {
                    return Err(invalid(format!(
                        "row \"{t}\" does not exist (row ids run {}..{})",
                        ids.first().copied().unwrap_or(0),
                        ids.last().copied().unwrap_or(0)
                    )));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// The edits that must go with edit `id` when it is taken away: it, and every later edit that
/// reads a feature one of them adds (transitively), in order.
pub(crate) fn with_dependents(effective: &[gyre_core::Edit], id: i64) -> Vec<i64> {
    let mut gone = vec![id];
    let mut added: Vec<&str> = Vec::new();
    for e in effective {
        let reads_gone = added.iter().any(|c| reads_column(&e.kind, c));
        if e.id == id || reads_gone {
            if e.id != id {
                gone.push(e.id);
            }
            if let EditKind::AddFeature { name, .. } = &e.kind {
                added.push(name);
            }
        }
    }
    gone
}

/// Whether an edit reads a column (in a predicate or an expression).
fn reads_column(kind: &EditKind, column: &str) -> bool {
    match kind {
        EditKind::Exclude { predicate }
        | EditKind::Include { predicate }
        | EditKind::Weight { predicate, .. } => predicate.columns().contains(&column),
        EditKind::Relabel { predicate, .. } => predicate
            .as_ref()
            .is_some_and(|p| p.columns().contains(&column)),
        EditKind::AddFeature { expr, .. } => expr.columns().contains(&column),
        EditKind::DropFeature { column: c } => c == column,
        EditKind::AddSource { key, .. } => key.as_deref() == Some(column),
        EditKind::Revert { .. } => false,
    }
}
