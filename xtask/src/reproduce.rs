//! `cargo xtask reproduce <figure>`: from nothing to figures and verdicts.
//!
//! Runs setup, installs CIFAR-10 when it is not there yet (from `--archive`,
//! `$LANDSCAPE_CIFAR10_ARCHIVE`, or the official URL), builds the CLI in
//! release mode and runs `landscape reproduce <figure>` with the same flags.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::setup;
use crate::util::{self, project_root};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// The experiment (`landscape reproduce --help` lists them with a line
    /// each, `landscape reproduce --list` one name a line), or `all`: every
    /// figure into runs/<figure>-<scale>, then runs/index.html.
    pub figure: String,
    /// smoke | quick | medium | paper (see docs/protocols.md).
    #[arg(long, default_value = "quick")]
    pub scale: String,
    /// Output folder (default: runs/<figure>-<scale>; with `all`, the runs folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto | cpu | cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// A local CIFAR-10 .tar.gz to install from when the data is missing, for
    /// machines without internet: the official archive
    /// https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, e.g.
    /// ~/Downloads/cifar-10-binary.tar.gz (default:
    /// $LANDSCAPE_CIFAR10_ARCHIVE, else the official download).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Extra arguments for `landscape reproduce` (after `--`).
    #[arg(last = true)]
    pub rest: Vec<String>,
}

/// Said when `landscape data install` fails without `--archive`: the official
/// download did not work (no internet, a proxy, the server down).
fn offline_hint(task: &str) -> String {
    format!(
        "could not download CIFAR-10 (no internet?). On a machine without internet, \
install it from a local copy of the official archive
https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (170 MB; download it \
anywhere and copy it over):
    cargo xtask {task} --archive ~/Downloads/cifar-10-binary.tar.gz
or set LANDSCAPE_CIFAR10_ARCHIVE to its path"
    )
}

/// Said when installing from a local archive fails.
const ARCHIVE_HINT: &str = "\
--archive wants the official archive, unchanged: \
https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (or cifar-10-python.tar.gz), \
e.g. --archive ~/Downloads/cifar-10-binary.tar.gz";

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

/// Installs CIFAR-10 with `bin data install` when it is not there yet, from
/// `archive`, `$LANDSCAPE_CIFAR10_ARCHIVE` or the official download; the
/// error names the `--archive` flag (`task` is the xtask command line to
/// repeat with it, e.g. `reproduce fig14`).
pub fn install_data_if_missing(
    bin: &std::path::Path,
    archive: Option<PathBuf>,
    task: &str,
) -> Result<()> {
    if data_present() {
        return Ok(());
    }
    let archive =
        archive.or_else(|| std::env::var_os("LANDSCAPE_CIFAR10_ARCHIVE").map(PathBuf::from));
    let mut install = std::process::Command::new(bin);
    install
        .current_dir(project_root())
        .args(["data", "install"]);
    if let Some(a) = &archive {
        install.arg("--archive").arg(a);
    }
    if let Err(err) = util::run_checked(&mut install) {
        let hint = match &archive {
            None => offline_hint(task),
            Some(a) => format!(
                "could not install CIFAR-10 from {}. {ARCHIVE_HINT}",
                a.display()
            ),
        };
        bail!("{err:#}\n{hint}");
    }
    Ok(())
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let t0 = Instant::now();
    let env = setup::run(&setup::SetupArgs::default())?;
    util::say("building the landscape CLI (release)");
    let mut build = util::cargo();
    build.args(["build", "--release", "--quiet", "-p", "landscape-cli"]);
    env.apply(&mut build);
    util::run_checked(&mut build)?;
    let bin = util::target_dir().join("release").join("landscape");
    let built = t0.elapsed().as_secs_f64();

    install_data_if_missing(
        &bin,
        args.archive.clone(),
        &format!("reproduce {}", args.figure),
    )?;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_hint_names_the_archive_flag_and_the_official_url() {
        let hint = offline_hint("reproduce fig14");
        assert!(hint
            .contains("cargo xtask reproduce fig14 --archive ~/Downloads/cifar-10-binary.tar.gz"));
        assert!(hint.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"));
        assert!(ARCHIVE_HINT.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"));
    }
}
