//! `landscape embed`: the embedding principle on a stored snapshot. Split one
//! hidden channel (a wider network computing the same function), then
//! compare the two networks: outputs, loss, gradient norm, and optionally the
//! extremes of their Hessian spectra.
use std::path::PathBuf;

use anyhow::{Context, Result};
use landscape_experiments::hessian::{self, SpectrumConfig};
use landscape_experiments::provenance::write_json;
use landscape_experiments::surface::{self, Overrides, SubsetSize};
use landscape_net::{self as net, DeviceChoice, HessianBn, LossHessian};
use landscape_trajectory::SnapshotId;

const EXAMPLES: &str = "\
Examples:
  landscape embed --store runs/fig5-quick/store --id 80 --layer 3 --channel 0 --out runs/embed
  landscape embed --store S --id 80 --layer 5 --channel 7 --alpha 0.3 --spectrum --out runs/embed-5

Channel --channel of hidden layer --layer (2 = the first convolution) is
copied into a new channel whose outgoing weights take 1 - alpha of the
original's (the original keeps alpha). The wider network computes the same
function: the command checks it (per-image predictions and loss on the
training sample), prints both gradient norms (a critical point of the narrow
network is one of the wide network), and with --spectrum the largest and
smallest Hessian eigenvalues, trace and near-zero share of both (the wide
network gains flat or negative directions at an embedded critical point).
Writes --out/embed.json.";

/// The embedding principle on a stored snapshot.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct EmbedArgs {
    /// The trajectory store (run.json is read from the folder above it).
    #[arg(long)]
    store: PathBuf,
    /// The snapshot (as `landscape store ls` prints it).
    #[arg(long)]
    id: SnapshotId,
    /// The hidden layer whose channel is split (paper numbering, 2 = first convolution).
    #[arg(long)]
    layer: usize,
    /// The channel to split (0-based).
    #[arg(long)]
    channel: usize,
    /// Share of the outgoing weights that stays with the original channel.
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Training images for the comparison (a stratified subset; default: the run's).
    #[arg(long)]
    sample: Option<SubsetSize>,
    /// BN statistics of the differentiated loss: fixed or batch.
    #[arg(long, default_value = "fixed")]
    bn: HessianBn,
    /// Also estimate the extremes of both Hessians (Lanczos, Hutchinson, SLQ; one seed).
    #[arg(long)]
    spectrum: bool,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// CIFAR-10 folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// libtorch CPU threads.
    #[arg(long)]
    threads: Option<usize>,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[allow(clippy::print_stdout)]
pub fn run(args: EmbedArgs) -> Result<()> {
    let snap = surface::load_snapshot(
        &args.store,
        args.id,
        &Overrides {
            train_size: args.sample,
            train_size_flag: Some("--sample"),
            train_only: true,
            ..Overrides::default()
        },
        args.device,
        args.data.as_deref(),
        args.threads,
    )?;
    let (wide, split) = net::split_channel(&snap.model, args.layer, args.channel, args.alpha)
        .context("--layer/--channel/--alpha")?;
    let data = &snap.data.train;
    let chunk = snap.eval.chunk_size.max(2);
    let en = net::evaluate(&snap.model, data, chunk)?;
    let ew = net::evaluate(&wide, data, chunk)?;
    let same_predictions = en
        .correct
        .iter()
        .zip(&ew.correct)
        .filter(|(a, b)| a == b)
        .count();
    let (ln, gn) = LossHessian::new(&snap.model, data, chunk, args.bn)?.loss_and_gradient()?;
    let (lw, gw) = LossHessian::new(&wide, data, chunk, args.bn)?.loss_and_gradient()?;
    let spectra = if args.spectrum {
        let cfg = SpectrumConfig {
            bn: args.bn,
            chunk_size: chunk,
            top_k: 1,
            lanczos_steps: 20,
            probes: 10,
            slq_runs: 2,
            slq_steps: 20,
            seeds: vec![0],
            ..SpectrumConfig::default()
        };
        Some((
            hessian::analyse(&snap.model, data, &cfg)?,
            hessian::analyse(&wide, data, &cfg)?,
        ))
    } else {
        None
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {} (--out)", args.out.display()))?;
    let summary = serde_json::json!({
        "store": args.store,
        "snapshot": args.id,
        "split": { "layer": split.layer, "channel": split.channel, "copy": split.copy, "alpha": split.alpha },
        "params": { "narrow": snap.model.num_params(), "wide": wide.num_params() },
        "examples": data.len(),
        "eval_loss": { "narrow": en.loss, "wide": ew.loss, "abs_difference": (en.loss - ew.loss).abs() },
        "same_correctness": same_predictions,
        "train_loss_bn": args.bn.as_str(),
        "loss": { "narrow": ln, "wide": lw },
        "gradient_norm": { "narrow": norm(&gn), "wide": norm(&gw) },
        "spectra": spectra.as_ref().map(|(a, b)| serde_json::json!({
            "narrow": { "top": a.top.first().map(|s| s.mean), "smallest": a.min_eigenvalue.mean, "trace": a.trace.mean, "near_zero_share": a.near_zero_share },
            "wide": { "top": b.top.first().map(|s| s.mean), "smallest": b.min_eigenvalue.mean, "trace": b.trace.mean, "near_zero_share": b.near_zero_share },
        })),
        "settings": snap.settings,
    });
    write_json(&args.out.join("embed.json"), &summary)?;
    println!(
        "split channel {} of layer {} (alpha {}): {} -> {} parameters",
        split.channel,
        split.layer,
        split.alpha,
        snap.model.num_params(),
        wide.num_params()
    );
    println!(
        "  on {} training images: loss {:.6} vs {:.6} (|difference| {:.2e}); the same correct/incorrect verdict on {} of {} images",
        data.len(),
        en.loss,
        ew.loss,
        (en.loss - ew.loss).abs(),
        same_predictions,
        data.len()
    );
    println!(
        "  gradient norm (BN {}): narrow {:.4e}, wide {:.4e}",
        args.bn.as_str(),
        norm(&gn),
        norm(&gw)
    );
    if let Some((a, b)) = &spectra {
        for (name, r) in [("narrow", a), ("wide", b)] {
            println!(
                "  {name:<6} Hessian: top {:.5}, smallest {:.5}, trace {:.4}, near-zero share (SLQ) {:.3}",
                r.top.first().map_or(f64::NAN, |s| s.mean),
                r.min_eigenvalue.mean,
                r.trace.mean,
                r.near_zero_share
            );
        }
    }
    println!("wrote {}", args.out.join("embed.json").display());
    Ok(())
}
