//! `landscape index`: one HTML page with every figure run at a scale.
use std::path::PathBuf;

use anyhow::Result;
use landscape_engine::config::Scale;
use landscape_figures::Registry;

const EXAMPLES: &str = "\
Examples:
  landscape index                        # runs/index.html from runs/<figure>-quick/
  landscape index --scale smoke --runs /tmp/runs
  cargo xtask check-index                # render it in headless Chromium and check it

The page inlines every figure's SVG panels (hover a point for its run, epoch
and errors), its verdict table, its config and its run time; it reads offline
from the file system. Figures not run yet at the scale are listed with the
command that runs them.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct IndexArgs {
    /// The folder holding <figure>-<scale>/ run folders; the page is written there.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Which scale's runs.
    #[arg(long, default_value = "quick")]
    pub scale: Scale,
}

#[allow(clippy::print_stdout)]
pub fn run(args: IndexArgs, registry: &Registry) -> Result<()> {
    let s = landscape_figures::index::write_index(&args.runs, args.scale.as_str(), registry)?;
    println!(
        "{}: {} figure(s) with {} SVG panel(s); not run at scale {}: {}",
        s.page.display(),
        s.present.len(),
        s.svgs,
        args.scale,
        if s.missing.is_empty() {
            "none".to_owned()
        } else {
            s.missing.join(", ")
        }
    );
    Ok(())
}
