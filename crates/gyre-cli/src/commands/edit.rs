//! `gyre edit exclude|include|relabel|weight|drop-feature|revert ... --why TEXT`.

use crate::cli::{Cli, EditArgs, EditCommand};
use crate::output::{self, count, short};
use gyre_app::EditSpec;
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &EditArgs) -> anyhow::Result<ExitCode> {
    let spec = match &args.kind {
        EditCommand::Exclude { predicate, .. } => EditSpec::Exclude {
            predicate: predicate.clone(),
        },
        EditCommand::Include { predicate, .. } => EditSpec::Include {
            predicate: predicate.clone(),
        },
        EditCommand::Relabel {
            rows,
            predicate,
            to,
            new_class,
            ..
        } => EditSpec::Relabel {
            rows: rows.clone(),
            predicate: predicate.clone(),
            to: to.clone(),
            new_class: *new_class,
        },
        EditCommand::Weight { predicate, by, .. } => EditSpec::Weight {
            predicate: predicate.clone(),
            by: *by,
        },
        EditCommand::AddSource { path, key, .. } => EditSpec::AddSource {
            path: path.clone(),
            key: key.clone(),
        },
        EditCommand::DropFeature { column, .. } => EditSpec::DropFeature {
            column: column.clone(),
        },
        EditCommand::AddFeature { name, expr, .. } => EditSpec::AddFeature {
            name: name.clone(),
            expr: expr.clone(),
        },
        EditCommand::Revert { edit, .. } => EditSpec::Revert { edit: *edit },
    };
    let why = match &args.kind {
        EditCommand::Exclude { why, .. }
        | EditCommand::Include { why, .. }
        | EditCommand::Relabel { why, .. }
        | EditCommand::Weight { why, .. }
        | EditCommand::AddSource { why, .. }
        | EditCommand::DropFeature { why, .. }
        | EditCommand::AddFeature { why, .. }
        | EditCommand::Revert { why, .. } => &why.why,
    };
    let r = super::open(cli)?.edit(args.dataset.as_deref(), &spec, Some(why))?;
    if cli.json {
        output::json(&r);
    } else {
        let mut s = format!(
            "edit #{}: {} ({} rows affected)\n  why      {}\n  version  {} -> {}\n",
            r.edit,
            r.description,
            count(r.rows_affected),
            r.why,
            short(&r.previous_version),
            short(&r.version)
        );
        if let Some(n) = r.unmatched_rows {
            s.push_str(&format!(
                "  joined   {} rows found no match in the new file (their new columns are missing)\n",
                count(n)
            ));
        }
        if let Some(f) = &r.feature {
            s.push_str(&format!(
                "  feature  {} is {}{}, missing on {} rows\n",
                f.name,
                f.kind,
                if f.categories.is_empty() {
                    String::new()
                } else {
                    format!(" ({} categories)", f.categories.len())
                },
                count(f.missing)
            ));
        }
        output::print(&s);
    }
    Ok(ExitCode::SUCCESS)
}
