//! `landscape store`: list, show and verify a trajectory store.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use landscape_trajectory::{Filter, SnapshotId, SnapshotInfo, Store};

const EXAMPLES: &str = "\
Examples:
  landscape store ls runs/fig14-quick/store
  landscape store ls runs/fig14-quick/store --filter run=main,epoch=0..50,kind=trained
  landscape store show runs/fig14-quick/store 12
  landscape store verify runs/fig14-quick/store
  landscape store merge --out runs/plane runs/p/1 runs/p/2 runs/p/3   # shards of a surface grid

Filters are comma-separated key=value terms, all of which must hold:
  run=main|branch1  kind=trained|perturbed|interpolated|averaged|initial|other:NAME
  id=10..20  stage=1..=3  epoch=0..50  step=..1000  (A..B excludes B, A..=B includes it)
  parent=ID  has=test_error  extra.KEY=VALUE";

/// Inspect and verify a trajectory store.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    /// List the snapshots as a table (id, run, kind, stage, epoch, step, parent, metrics).
    #[command(after_help = EXAMPLES)]
    Ls(LsArgs),
    /// Show one snapshot: metadata, metrics and every tensor's shape, offset and checksum.
    #[command(after_help = EXAMPLES)]
    Show(ShowArgs),
    /// Check every checksum; list each problem with its file, byte offset,
    /// snapshot and tensor. Exits non-zero if anything is damaged.
    #[command(after_help = EXAMPLES)]
    Verify(VerifyArgs),
    /// Join the shard folders of a grid or line (`landscape surface ... --shard
    /// K/N`) into one, after checking that they belong to the same grid and
    /// cover it exactly once; the same as `landscape surface merge`.
    #[command(after_help = EXAMPLES)]
    Merge(super::surface::MergeArgs),
}

#[derive(clap::Args)]
struct LsArgs {
    /// The store folder.
    path: PathBuf,
    /// Only the snapshots this filter selects (see below).
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
}

#[derive(clap::Args)]
struct ShowArgs {
    /// The store folder.
    path: PathBuf,
    /// The snapshot id.
    id: SnapshotId,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The store folder.
    path: PathBuf,
}

/// Runs `landscape store`.
pub fn run(args: StoreArgs) -> Result<()> {
    match args.command {
        StoreCommand::Ls(a) => ls(a),
        StoreCommand::Show(a) => show(a),
        StoreCommand::Verify(a) => verify(a),
        StoreCommand::Merge(a) => super::surface::merge(a),
    }
}

fn open(path: &PathBuf) -> Result<Store> {
    Store::open(path).with_context(|| format!("opening the store {}", path.display()))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn metric(info: &SnapshotInfo, name: &str) -> String {
    info.meta()
        .metric(name)
        .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

#[allow(clippy::print_stdout)]
fn ls(args: LsArgs) -> Result<()> {
    let store = open(&args.path)?;
    let filter: Filter = match &args.filter {
        Some(f) => f.parse()?,
        None => Filter::all(),
    };
    let rows = store.find(&filter);
    println!(
        "{:>6}  {:<10} {:<13} {:>5} {:>5} {:>8} {:>6}  {:>10} {:>10} {:>10} {:>10}",
        "id",
        "run",
        "kind",
        "stage",
        "epoch",
        "step",
        "parent",
        "train_loss",
        "train_err",
        "test_loss",
        "test_err"
    );
    for i in &rows {
        let m = i.meta();
        println!(
            "{:>6}  {:<10} {:<13} {:>5} {:>5} {:>8} {:>6}  {:>10} {:>10} {:>10} {:>10}",
            i.id(),
            m.run(),
            m.kind().name(),
            opt(m.stage()),
            opt(m.epoch()),
            opt(m.step()),
            opt(m.parent()),
            metric(i, "train_loss"),
            metric(i, "train_error"),
            metric(i, "test_loss"),
            metric(i, "test_error"),
        );
    }
    println!("{} of {} snapshots", rows.len(), store.len());
    Ok(())
}

#[allow(clippy::print_stdout)]
fn show(args: ShowArgs) -> Result<()> {
    let store = open(&args.path)?;
    let info = store.get(args.id)?;
    let m = info.meta();
    println!(
        "snapshot {}  ({}, {} bytes)",
        info.id(),
        info.file().display(),
        info.file_len()
    );
    println!("  run      {}", m.run());
    println!("  kind     {}", m.kind());
    println!("  parent   {}", opt(m.parent()));
    println!("  stage    {}", opt(m.stage()));
    println!("  epoch    {}", opt(m.epoch()));
    println!("  step     {}", opt(m.step()));
    for (k, v) in m.metrics() {
        println!("  metric   {k} = {v}");
    }
    for (k, v) in m.extra() {
        println!("  extra    {k} = {v}");
    }
    println!(
        "\n  {:<28} {:<18} {:>10} {:>12} {:>10}",
        "tensor", "shape", "values", "offset", "crc32"
    );
    for t in info.tensors() {
        println!(
            "  {:<28} {:<18} {:>10} {:>12} {:>#10x}",
            t.name(),
            format!("{:?}", t.shape()),
            t.numel(),
            t.byte_offset(),
            t.crc32()
        );
    }
    println!(
        "  {} tensors, {} values",
        info.tensors().len(),
        info.numel()
    );
    Ok(())
}

#[allow(clippy::print_stdout)]
fn verify(args: VerifyArgs) -> Result<()> {
    let report = landscape_trajectory::verify(&args.path)
        .with_context(|| format!("verifying the store {}", args.path.display()))?;
    for f in report.findings() {
        println!("{f}");
    }
    let errors = report.errors().count();
    println!(
        "{}: {} snapshots, {} tensors, {:.1} MB checked; {errors} errors, {} warnings",
        args.path.display(),
        report.snapshots_checked(),
        report.tensors_checked(),
        report.bytes_checked() as f64 / 1e6,
        report.findings().len() - errors
    );
    if !report.is_intact() {
        bail!(
            "the store {} is damaged ({errors} errors)",
            args.path.display()
        );
    }
    Ok(())
}
