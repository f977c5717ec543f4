//! `landscape data`: install, locate and verify CIFAR-10.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_dataset::{
    default_data_dir, locate, InstallParams, Progress, Source, Stage, VerifyReport, CLASS_NAMES,
    OFFICIAL_URL,
};

const EXAMPLES: &str = "\
Examples:
  landscape data install                        # official URL, MD5-checked, into <workspace>/data
  landscape data install --archive ~/Downloads/cifar-10-binary.tar.gz
  landscape data install --archive ~/cifar-10-python.tar.gz --dir /scratch/data
  landscape data verify
  landscape data verify --data ~/.torchvision/cifar-10-batches-py
  landscape data locate
  LANDSCAPE_CIFAR10=/scratch/data landscape data verify

Without internet, download the official archive
https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (170 MB) elsewhere,
copy it over and pass it with --archive.";

/// Install, locate and verify CIFAR-10.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Download the official archive (or extract a local one) into DIR.
    ///
    /// The archive is extracted and every file checked in a temporary
    /// folder inside DIR, then moved into place in one step: an interrupted
    /// install leaves nothing half-written.
    #[command(after_help = EXAMPLES)]
    Install(InstallArgs),
    /// Read every file of the installed data and print counts, label range,
    /// per-class counts and file sizes.
    #[command(after_help = EXAMPLES)]
    Verify(VerifyArgs),
    /// Print the folder the experiments would read (--data, then
    /// LANDSCAPE_CIFAR10, then <workspace>/data).
    #[command(after_help = EXAMPLES)]
    Locate(LocateArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// A local cifar-10-binary.tar.gz or cifar-10-python.tar.gz to extract
    /// instead of downloading, e.g. the official archive saved as
    /// ~/Downloads/cifar-10-binary.tar.gz (its structure is checked, not its
    /// MD5).
    #[arg(long, value_name = "PATH")]
    archive: Option<PathBuf>,
    /// Folder to install into [default: <workspace>/data].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Replace an existing installation.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The CIFAR-10 folder, or a folder holding cifar-10-batches-bin/-py
    /// [default: as `landscape data locate`].
    #[arg(long, visible_alias = "data", value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct LocateArgs {
    /// Look here first (as the experiments' --data DIR).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// Runs `landscape data`.
pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Install(a) => install(a),
        DataCommand::Verify(a) => verify(a.dir.as_deref()),
        DataCommand::Locate(a) => locate_cmd(a.data.as_deref()),
    }
}

/// An indicatif bar per install stage.
struct Bar {
    bar: Option<ProgressBar>,
}

impl Progress for Bar {
    fn start(&mut self, stage: Stage, total: Option<u64>) {
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::new(n);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            }
        };
        bar.set_message(stage.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self, _stage: Stage) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

#[allow(clippy::print_stdout)]
fn install(args: InstallArgs) -> Result<()> {
    let dir = args.dir.unwrap_or_else(default_data_dir);
    match &args.archive {
        Some(a) => tracing::info!(
            "installing CIFAR-10 from {} into {}",
            a.display(),
            dir.display()
        ),
        None => tracing::info!("downloading {OFFICIAL_URL} into {}", dir.display()),
    }
    let downloading = args.archive.is_none();
    let params = InstallParams::new(&dir)
        .archive(args.archive)
        .force(args.force);
    let report = params.install(&mut Bar { bar: None }).with_context(|| {
        if downloading {
            format!(
                "installing CIFAR-10 (no internet? download the official archive {OFFICIAL_URL} \
                     anywhere, copy it here and run: landscape data install --archive \
                     ~/Downloads/cifar-10-binary.tar.gz)"
            )
        } else {
            "installing CIFAR-10".to_owned()
        }
    })?;
    let from = match &report.source {
        Source::Download { url, md5 } => format!("{url} (MD5 {md5}, official)"),
        Source::Archive { path, md5 } => format!("{} (MD5 {md5})", path.display()),
    };
    println!(
        "installed {} from {from}, {:.1} MB{}",
        report.path.display(),
        report.archive_bytes as f64 / 1e6,
        if report.replaced {
            " (replaced the previous copy)"
        } else {
            ""
        }
    );
    print_report(&report.verify);
    Ok(())
}

fn verify(dir: Option<&Path>) -> Result<()> {
    let found = locate(dir)?;
    let report = landscape_dataset::verify(&found)
        .with_context(|| format!("verifying {}", found.display()))?;
    print_report(&report);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn locate_cmd(data: Option<&Path>) -> Result<()> {
    println!("{}", locate(data)?.display());
    Ok(())
}

/// Prints a verify report as two short tables: files, then classes.
#[allow(clippy::print_stdout)]
fn print_report(r: &VerifyReport) {
    println!("{} ({} layout)", r.dir.display(), r.layout);
    println!(
        "{:<18} {:>5} {:>12} {:>8} {:>7}",
        "file", "split", "bytes", "images", "labels"
    );
    for f in &r.files {
        println!(
            "{:<18} {:>5} {:>12} {:>8} {:>7}",
            f.name,
            f.split.to_string(),
            f.bytes,
            f.records,
            format!("{}-{}", f.label_min, f.label_max)
        );
    }
    println!("{:<18} {:>5} {:>12}", r.meta_file, "", r.meta_bytes);
    println!();
    println!(
        "{:>5} {:<12} {:>7} {:>7}",
        "label", "class", "train", "test"
    );
    for (c, name) in r.class_names.iter().enumerate() {
        let mark = if CLASS_NAMES.get(c) == Some(&name.as_str()) {
            ""
        } else {
            " (unusual name)"
        };
        println!(
            "{c:>5} {name:<12} {:>7} {:>7}{mark}",
            r.train_class_counts[c], r.test_class_counts[c]
        );
    }
    println!(
        "{:>5} {:<12} {:>7} {:>7}",
        "",
        "total",
        r.train_images(),
        r.test_images()
    );
    println!("ok: every file read in full, every label in 0-9");
}
