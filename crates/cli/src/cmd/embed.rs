//! `landscape embed`: the embedding principle on a stored snapshot. Split one
//! hidden channel (a wider network computing the same function), then
//! compare the two networks: outputs, loss, gradient norm, and optionally the
//! extremes of their Hessian spectra.
use std::path::PathBuf;

use anyhow::{Context, Result};
use landscape_engine::provenance::write_json;
use landscape_net::{self as net, HessianBn, HessianPrecision, LossHessian};
use landscape_probe::hessian::{self, SpectrumConfig};
use landscape_probe::snapshot::{self, Overrides, SubsetSize};
use landscape_trajectory::SnapshotId;

const EXAMPLES: &str = "\
Examples:
  landscape embed --store runs/fig5-quick/store --id 80 --layer 3 --channel 0 --out runs/embed
  landscape embed --store S --id 80 --layer 5 --channel 7 --alpha 0.3 --spectrum --out runs/embed-5
  landscape embed --store S --id 80 --layer 3 --channel 0 --spectrum --sample 250 --seeds 0,1,2 --slq-runs 4 --out runs/embed-s

Channel --channel of hidden layer --layer (2 = the first convolution) is
copied into a new channel whose outgoing weights take 1 - alpha of the
original's (the original keeps alpha). The wider network computes the same
function: the command checks it (per-image predictions and loss on the
training sample), prints both gradient norms (a critical point of the narrow
network is one of the wide network), and with --spectrum the largest and
smallest Hessian eigenvalues, trace, and the degeneracy count of both (SLQ
share of eigenvalues with |lambda| <= --zero-rtol x top, times the parameter
count, mean +- std over --seeds), and the curvature along the flat subspace
S (the split channel's outgoing weights moved +d on the channel, -d on the
copy; the function is constant along it): s'Hs on --flat-probes random unit
s of S (zero in exact arithmetic) beside a control on the same weights, |Hs|
(zero: the wide point is degenerate along s; not zero: it is a saddle) and
the negative curvature that span{s, Hs} certifies. Theory (landscape-net's
embed module, docs/beyond-the-paper.md): the wide Hessian has at least
dim S more non-positive eigenvalues than the narrow one, and no sign count
decreases. Writes --out/embed.json.";

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
    /// Also estimate the extremes, trace and degeneracy count of both
    /// Hessians (Lanczos, Hutchinson, SLQ) and the curvature along S.
    #[arg(long)]
    spectrum: bool,
    /// Seeds of the spectrum estimates (the spread is over these).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Lanczos basis size of the eigensolvers.
    #[arg(long, default_value_t = 20)]
    lanczos_steps: usize,
    /// Hutchinson probes per trace estimate.
    #[arg(long, default_value_t = 10)]
    probes: usize,
    /// SLQ runs per seed (the density picture in embed.json).
    #[arg(long, default_value_t = 2)]
    slq_runs: usize,
    /// Lanczos steps per SLQ run.
    #[arg(long, default_value_t = 20)]
    slq_steps: usize,
    /// |eigenvalue| <= this x the top one counts as zero (degeneracy count,
    /// kernel polynomial method). The default is coarser than `landscape
    /// hessian`'s 1e-3 because the count's cost grows as 1 / threshold
    /// (the Chebyshev degree that resolves the window).
    #[arg(long, default_value_t = 1e-2)]
    zero_rtol: f64,
    /// Rademacher probes of each degeneracy count (0: no count).
    #[arg(long, default_value_t = 30)]
    count_probes: usize,
    /// Largest Chebyshev degree of the degeneracy counts.
    #[arg(long, default_value_t = 4000)]
    count_max_degree: usize,
    /// Float type of the degeneracy counts' products: f64 or f32.
    #[arg(long, default_value = "f64")]
    count_precision: HessianPrecision,
    /// Random unit vectors of S on which the wide Hessian is probed.
    #[arg(long, default_value_t = 3)]
    flat_probes: usize,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    compute: super::Compute,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[allow(clippy::print_stdout)]
pub fn run(args: EmbedArgs) -> Result<()> {
    let snap = snapshot::load_snapshot(
        &args.store,
        args.id,
        &Overrides {
            train_size: args.sample,
            names: Some(super::sample_flag),
            train_only: true,
            ..Overrides::default()
        },
        args.compute.device,
        args.compute.data.as_deref(),
        args.compute.threads,
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
    let t0 = std::time::Instant::now();
    let spectra = if args.spectrum {
        let cfg = SpectrumConfig {
            bn: args.bn,
            chunk_size: chunk,
            top_k: 1,
            lanczos_steps: args.lanczos_steps,
            probes: args.probes,
            slq_runs: args.slq_runs,
            slq_steps: args.slq_steps,
            seeds: args.seeds.clone(),
            zero_rtol: args.zero_rtol,
            count_probes: args.count_probes,
            count_max_degree: args.count_max_degree,
            count_precision: args.count_precision,
            ..SpectrumConfig::default()
        };
        cfg.validate("").map_err(super::field_as_flag)?;
        let a = hessian::analyse(&snap.model, data, &cfg)?;
        let b = hessian::analyse(&wide, data, &cfg)?;
        let seed = args.seeds.first().copied().unwrap_or(0);
        let flat = hessian::flat_subspace(
            &snap.model,
            &wide,
            &split,
            data,
            &cfg,
            args.flat_probes,
            seed,
        )?;
        Some((a, b, flat))
    } else {
        None
    };
    let secs = t0.elapsed().as_secs_f64();
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
        "spectra": spectra.as_ref().map(|(a, b, f)| {
            let top = b.top.first().map_or(f64::NAN, |s| s.mean);
            serde_json::json!({
                "narrow": a,
                "wide": b,
                "flat_subspace": f,
                "flat_form_over_top": f.probes.iter().map(|p| p.form / top).collect::<Vec<_>>(),
                "control_form_over_top": f.probes.iter().map(|p| p.control_form / top).collect::<Vec<_>>(),
                "hs_norm_over_top": f.probes.iter().map(|p| p.hs_norm / top).collect::<Vec<_>>(),
                "near_zero_count_change": count_change(a, b).map(|(d, h)| serde_json::json!({"estimate": d, "half_width_95": h})),
                "new_parameters": wide.num_params() - snap.model.num_params(),
            })
        }),
        "spectrum_seconds": secs,
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
    if let Some((a, b, f)) = &spectra {
        for (name, r) in [("narrow", a), ("wide", b)] {
            println!(
                "  {name:<6} Hessian ({} parameters): top {:.5} +- {:.1e}, smallest {:.5} +- {:.1e}, trace {:.4} +- {:.1e}",
                r.dim,
                r.top.first().map_or(f64::NAN, |s| s.mean),
                r.top.first().map_or(f64::NAN, |s| s.std),
                r.min_eigenvalue.mean,
                r.min_eigenvalue.std,
                r.trace.mean,
                r.trace.std,
            );
            if let Some(c) = &r.near_zero_count {
                println!(
                    "         degeneracy (|lambda| <= {} x top): {}",
                    r.config.zero_rtol,
                    super::hessian::count_line(c, r.dim)
                );
            }
        }
        let top = b.top.first().map_or(f64::NAN, |s| s.mean);
        let fmt = |v: Vec<f64>| {
            v.iter()
                .map(|x| format!("{x:.1e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  flat subspace S (dim {}; {} incoming parameters): on {} random unit s, s'Hs / top = [{}] (control on the same weights, not in S: [{}])",
            f.dim,
            f.incoming,
            f.probes.len(),
            fmt(f.probes.iter().map(|p| p.form / top).collect()),
            fmt(f.probes.iter().map(|p| p.control_form / top).collect()),
        );
        println!(
            "         |Hs| / top = [{}] (0: degenerate along s; not 0: a saddle); negative curvature certified by span{{s, Hs}}: [{}]",
            fmt(f.probes.iter().map(|p| p.hs_norm / top).collect()),
            fmt(f.probes.iter().map(|p| p.certificate).collect()),
        );
        println!(
            "  theory: the wide Hessian has at least {} (= dim S) more non-positive eigenvalues; estimated near-zero count moved by {} (of {} new parameters); {:.1} s",
            f.dim,
            count_change(a, b).map_or("- (no count: --count-probes 0)".to_owned(), |(d, h)| format!(
                "{d:.0} (95% interval {:.0}..{:.0})",
                d - h,
                d + h
            )),
            wide.num_params() - snap.model.num_params(),
            secs
        );
    }
    println!("wrote {}", args.out.join("embed.json").display());
    Ok(())
}

/// The change of the near-zero count from the narrow (`a`) to the wide
/// (`b`) Hessian and the half-width of its 95% interval (independent
/// probes: the standard errors add in quadrature, the bias bounds add).
fn count_change(a: &hessian::SpectrumReport, b: &hessian::SpectrumReport) -> Option<(f64, f64)> {
    let (a, b) = (a.near_zero_count.as_ref()?, b.near_zero_count.as_ref()?);
    let half =
        hessian::Z95 * a.standard_error.hypot(b.standard_error) + a.bias_bound + b.bias_bound;
    Some((b.estimate - a.estimate, half))
}
