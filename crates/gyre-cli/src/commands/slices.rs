//! `gyre slices RUN [--suite NAME] [--k N] [--max-level L] [--min-support S] [--alpha A]
//! [--overlap J]`.

use crate::cli::{Cli, SlicesArgs};
use crate::output::{self, count, short};
use gyre_app::{SliceAlso, SliceParams, SliceRow, SlicesRequest};
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &SlicesArgs) -> anyhow::Result<ExitCode> {
    let req = SlicesRequest {
        run: args.run.clone(),
        suite: args.suite.clone(),
        params: SliceParams {
            k: args.k,
            max_level: args.max_level,
            min_support: args.min_support,
            alpha: args.alpha,
            overlap: args.overlap,
        },
        error: args.error.clone(),
    };
    let r = super::open(cli)?.slices(&req)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "slices of run {} on {} ({} rows, average {} {:.4}){}\n",
        short(&r.run),
        r.suite,
        count(r.rows as u64),
        r.error_metric,
        r.average_error,
        if r.cached {
            " [found before, read from the cache]"
        } else {
            ""
        }
    );
    if r.slices.is_empty() {
        s.push_str("  no slice is clearly worse than average\n");
    }
    s.push_str(&table(&r.slices, r.error_metric));
    s.push_str("\nto watch one: gyre suite add NAME --where \"PREDICATE\"\n");
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

/// Slices as readable lines: the predicate, then size, the measure SliceLine looked for (an
/// error for `slices`, the negative-flip rate for `diff`) and how many times its average, and
/// SliceLine's score, explained once below.
pub fn table(slices: &[SliceRow], measure: &str) -> String {
    let mut s = String::new();
    for (i, x) in slices.iter().enumerate() {
        s.push_str(&format!(
            "  {:>2}. {}\n      {} rows, {measure} {:.3} ({:.1}x average), score {:.3}\n",
            i + 1,
            x.predicate,
            count(x.size as u64),
            x.error,
            x.error_ratio,
            x.score
        ));
        s.push_str(&also_lines(&x.also));
    }
    if !slices.is_empty() {
        s.push_str(
            "      (score: SliceLine's rank, how far a slice's rate is above average weighed against \
             how small it is (--alpha weights the rate); above 0 is worse than average once size \
             is counted; higher ranks first)\n",
        );
    }
    s
}

/// The most other descriptions of a slice's rows shown under it (`--json` has them all).
const ALSO_SHOWN: usize = 3;

/// A slice's other descriptions (slices over mostly its rows), indented under it.
fn also_lines(also: &[SliceAlso]) -> String {
    let mut s = String::new();
    for a in also.iter().take(ALSO_SHOWN) {
        let same = if a.jaccard == 1.0 {
            "exactly these rows".to_string()
        } else {
            format!("jaccard {:.2}", a.jaccard)
        };
        s.push_str(&format!(
            "      same rows as: {} ({} rows, {same})\n",
            a.predicate,
            count(a.size as u64)
        ));
    }
    if also.len() > ALSO_SHOWN {
        s.push_str(&format!(
            "      and {} more descriptions of these rows (--json lists them)\n",
            also.len() - ALSO_SHOWN
        ));
    }
    s
}
