//! `cargo xtask reproduce <figure>`: from nothing to figures and verdicts.
//!
//! Runs setup, installs CIFAR-10 when it is not there yet (from `--archive`,
//! `$LANDSCAPE_CIFAR10_ARCHIVE`, or the official URL), builds the CLI in
//! release mode and runs `landscape reproduce <figure>` with the same flags.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::setup;
use crate::util::{self, project_root};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// The experiment, e.g. fig14.
    pub figure: String,
    /// smoke | quick | paper.
    #[arg(long, default_value = "quick")]
    pub scale: String,
    /// Output folder (default: runs/<figure>-<scale>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto | cpu | cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// A local CIFAR-10 .tar.gz to install from when the data is missing
    /// (default: $LANDSCAPE_CIFAR10_ARCHIVE, else the official download).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Extra arguments for `landscape reproduce` (after `--`).
    #[arg(last = true)]
    pub rest: Vec<String>,
}

fn data_present() -> bool {
    if std::env::var_os("LANDSCAPE_CIFAR10").is_some() {
        return true;
    }
    let data = project_root().join("data");
    data.join("cifar-10-batches-bin")
        .join("test_batch.bin")
        .exists()
        || data.join("cifar-10-batches-py").join("test_batch").exists()
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let t0 = Instant::now();
    let env = setup::run(&setup::SetupArgs::default())?;
    util::say("building the landscape CLI (release)");
    let mut build = util::cargo();
    build.args(["build", "--release", "--quiet", "-p", "landscape-cli"]);
    env.apply(&mut build);
    util::run_checked(&mut build)?;
    let bin = project_root()
        .join("target")
        .join("release")
        .join("landscape");
    let built = t0.elapsed().as_secs_f64();

    if !data_present() {
        let archive = args
            .archive
            .clone()
            .or_else(|| std::env::var_os("LANDSCAPE_CIFAR10_ARCHIVE").map(PathBuf::from));
        let mut install = std::process::Command::new(&bin);
        install
            .current_dir(project_root())
            .args(["data", "install"]);
        if let Some(a) = archive {
            install.arg("--archive").arg(a);
        }
        util::run_checked(&mut install)?;
    }

    let t1 = Instant::now();
    let mut cmd = std::process::Command::new(&bin);
    cmd.current_dir(project_root()).args([
        "reproduce",
        &args.figure,
        "--scale",
        &args.scale,
        "--device",
        &args.device,
    ]);
    if let Some(out) = &args.out {
        cmd.arg("--out").arg(out);
    }
    cmd.args(&args.rest);
    util::run_checked(&mut cmd)?;
    util::say(format!(
        "done: setup and build {:.0} s, experiment {:.0} s",
        built,
        t1.elapsed().as_secs_f64()
    ));
    Ok(())
}
