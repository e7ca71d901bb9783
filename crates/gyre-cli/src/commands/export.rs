//! `gyre export RUN --out DIR`: a run's model as ONNX, its inputs, predictions and model card.

use crate::cli::Cli;
use crate::output::{self, short};
use gyre_app::ExportRequest;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: &Cli, run: &str, out: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.export(&ExportRequest { run, out, force })?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!("exported run {} to {}\n", short(&r.run), r.out.display());
    for f in &r.files {
        s.push_str(&format!(
            "  {:<24} {:>12} bytes  sha256 {}\n",
            f.name,
            output::count(f.bytes),
            short(&f.sha256)
        ));
    }
    let opsets: Vec<String> = r
        .onnx
        .opset
        .iter()
        .map(|(d, v)| format!("{d} {v}"))
        .collect();
    s.push_str(&format!(
        "\nmodel.onnx: input {} ({} [N, {}]: codes for categories, NaN for missing), output {}; \
         opsets {}\n",
        r.onnx.inputs.input,
        r.onnx.inputs.dtype,
        r.onnx.inputs.shape.1,
        r.onnx.inputs.output.name,
        opsets.join(", ")
    ));
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
