//! `gyre data [NAME]`.

use crate::cli::Cli;
use crate::output::{self, count, num, short};
use std::process::ExitCode;

pub fn run(
    cli: &Cli,
    name: Option<&str>,
    versions: bool,
    version: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if versions {
        return show_versions(cli, name);
    }
    if let Some(v) = version {
        return show_version(cli, name, v);
    }
    let report = super::open(cli)?.data(name)?;
    if cli.json {
        output::json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    if report.datasets.is_empty() {
        output::print("no datasets yet\n\nnext: gyre import FILE --target COLUMN\n");
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    for d in &report.datasets {
        // The statistics describe the first source; rows appended by add-source are counted apart.
        let added: Vec<u64> = d
            .sources
            .iter()
            .skip(1)
            .filter(|s| s.joined_on.is_none())
            .map(|s| s.rows)
            .collect();
        let more = if added.is_empty() {
            String::new()
        } else {
            format!(
                " (+{} in {} added source{})",
                count(added.iter().sum()),
                added.len(),
                if added.len() == 1 { "" } else { "s" }
            )
        };
        s.push_str(&format!(
            "dataset {}: {} rows{more}, {} on \"{}\"\n",
            d.name,
            count(d.stats.rows as u64),
            d.task,
            d.target
        ));
        s.push_str(&format!(
            "  version  {} ({} version{})\n",
            short(&d.version),
            d.versions.len(),
            if d.versions.len() == 1 { "" } else { "s" }
        ));
        for src in &d.sources {
            if let Some(k) = &src.joined_on {
                s.push_str(&format!(
                    "  source   {} from {} ({} rows, columns joined on {k})\n",
                    short(&src.source),
                    src.file_name,
                    count(src.rows)
                ));
                continue;
            }
            s.push_str(&format!(
                "  source   {} from {} ({} rows, row ids {}..{})\n",
                short(&src.source),
                src.file_name,
                count(src.rows),
                src.first_row_id,
                src.first_row_id + src.rows - 1
            ));
        }
        let splits: Vec<String> = d
            .stats
            .splits
            .iter()
            .map(|(k, v)| format!("{k} {}", count(*v as u64)))
            .collect();
        s.push_str(&format!("  splits   {}\n", splits.join(", ")));
        if !d.stats.labels.is_empty() {
            s.push_str("  labels\n");
            for l in &d.stats.labels {
                let by: Vec<String> = l
                    .by_split
                    .iter()
                    .map(|(k, v)| format!("{k} {}", count(*v as u64)))
                    .collect();
                s.push_str(&format!(
                    "    {:<12} {:>9} ({:.1}%)  {}\n",
                    l.label,
                    count(l.count as u64),
                    100.0 * l.count as f64 / d.stats.rows as f64,
                    by.join(", ")
                ));
            }
        }
        s.push_str("  columns\n");
        let width = d
            .stats
            .columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4);
        for c in &d.stats.columns {
            let detail = match (c.min, c.max, c.mean) {
                (Some(lo), Some(hi), Some(mean)) => {
                    format!("min {}  max {}  mean {}", num(lo), num(hi), num(mean))
                }
                _ => c
                    .top
                    .iter()
                    .map(|v| format!("{} ({})", v.value, count(v.count as u64)))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let role = match c.role {
                gyre_core::ColumnRole::Feature => String::new(),
                r => format!(" [{}]", format!("{r:?}").to_lowercase()),
            };
            s.push_str(&format!(
                "    {:<width$}  {:<11} {:>7} missing {:>7} distinct  {}{}\n",
                c.name,
                c.kind.as_str(),
                count(c.missing as u64),
                count(c.distinct as u64),
                detail,
                role
            ));
        }
        s.push('\n');
    }
    output::print(s.trim_end_matches('\n'));
    output::print("\n");
    Ok(ExitCode::SUCCESS)
}

fn show_versions(cli: &Cli, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.versions(name)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!("versions of {}, oldest first\n", r.dataset);
    for v in &r.versions {
        s.push_str(&format!(
            "{:>3}  {}  {}{}\n",
            v.seq,
            short(&v.version),
            v.edit.map(|e| format!("#{e} ")).unwrap_or_default(),
            v.description
        ));
        if let Some(why) = &v.why {
            s.push_str(&format!(
                "       why: {why} ({}, {})\n",
                v.author.as_deref().unwrap_or("?"),
                v.created_at
            ));
        }
        let c = &v.change;
        let mut parts = vec![format!("{} training rows", count(c.training_rows as u64))];
        if c.training_rows_delta != 0 {
            parts.push(format!("{:+} rows", c.training_rows_delta));
        }
        if c.labels_changed > 0 {
            parts.push(format!("{} labels changed", count(c.labels_changed)));
        }
        if c.weighted_rows > 0 {
            parts.push(format!("{} rows weighted", count(c.weighted_rows as u64)));
        }
        if !c.dropped_features.is_empty() {
            parts.push(format!("dropped: {}", c.dropped_features.join(", ")));
        }
        s.push_str(&format!("       {}\n", parts.join("; ")));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

fn show_version(cli: &Cli, name: Option<&str>, version: &str) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.version(name, version)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "{} version {}: {} rows, {} used for training ({} excluded, {} weighted)\n",
        r.dataset,
        short(&r.version),
        count(r.stats.rows as u64),
        count(r.training_rows as u64),
        count(r.excluded_rows as u64),
        count(r.weighted_rows as u64)
    );
    if !r.dropped_features.is_empty() {
        s.push_str(&format!(
            "  dropped features: {}\n",
            r.dropped_features.join(", ")
        ));
    }
    for l in &r.stats.labels {
        s.push_str(&format!("  {:<12} {:>9}\n", l.label, count(l.count as u64)));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
