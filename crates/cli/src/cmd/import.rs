//! `landscape import`: PyTorch state_dicts of the paper's network into a
//! trajectory store, one snapshot per file.
use std::path::PathBuf;

use anyhow::Result;
use landscape_engine::eval::BnPolicy;
use landscape_probe::import::{self, ImportOptions};
use landscape_probe::snapshot::SubsetSize;

const EXAMPLES: &str = "\
Examples:
  # in PyTorch: torch.save(model.state_dict(), \"a.pt\") (or safetensors' save_file)
  landscape import --from a.pt --from b.safetensors --store runs/torch/store
  landscape import --from a.pt --from b.pt --store runs/torch/store --train-size 500 --test-size 500
  landscape store ls runs/torch/store
  landscape surface line --store runs/torch/store --from 0 --to 1 --out runs/torch/line
  landscape hessian --store runs/torch/store --id 0 --out runs/torch/hessian

Accepted: .safetensors files and torch.save zips (.pt/.pth) of the paper's
network (3x3 stride-2 convolutions, BatchNorm2d(affine=False), ReLU) under
landscape's names (layer2.weight, layer2.bn.running_mean, ..., layer6.bias)
or those of nn.Sequential (0.weight, 1.running_mean, ..., 12.bias), optionally
under `module.`; the widths are read from the shapes. float64, float16 and
bfloat16 are converted to float32. Each file becomes one snapshot of --run
(epochs 0, 1, ... in order) whose origin records the file's name and CRC-32.
A new store gets a run.json beside it (recorded as imported, not trained)
with the network, --bn (default running: the file's BN statistics, PyTorch's
eval mode) and, with --train-size and --test-size, the data the surface and
hessian commands evaluate on (without them, give --train-size and
--test-size to surface, --sample to hessian). With data settings, every
snapshot's loss and error are stored.
Images are normalised as landscape does (per-channel mean and std of the
CIFAR-10 training split): a model trained on other inputs is evaluated on
inputs it never saw. A store of another network is refused unchanged.";

fn parse_bn(s: &str) -> Result<BnPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: expected reestimate, running or batch"))
}

/// PyTorch state_dicts of the paper's network into a trajectory store.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ImportArgs {
    /// A .safetensors or torch.save (.pt/.pth) state_dict; repeat for more (one snapshot each, in order).
    #[arg(long = "from", value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// The trajectory store (created when missing; run.json is written beside a new one).
    #[arg(long)]
    store: PathBuf,
    /// Run name of the snapshots.
    #[arg(long, default_value = "imported")]
    run: String,
    /// Training images to evaluate on (a number or `all`; with --test-size).
    #[arg(long, value_name = "N|all", requires = "test_size")]
    train_size: Option<SubsetSize>,
    /// Test images to evaluate on (a number or `all`; with --train-size).
    #[arg(long, value_name = "N|all", requires = "train_size")]
    test_size: Option<SubsetSize>,
    /// BN policy recorded for evaluation: running (the file's statistics), reestimate or batch
    /// (default: run.json's, else running).
    #[arg(long, value_parser = parse_bn)]
    bn: Option<BnPolicy>,
    /// Images per forward pass (default: run.json's, else 1000).
    #[arg(long)]
    chunk_size: Option<usize>,
    #[command(flatten)]
    compute: super::Compute,
}

#[allow(clippy::print_stdout)]
pub fn run(args: ImportArgs) -> Result<()> {
    let opts = ImportOptions {
        files: args.files,
        store: args.store,
        run: args.run,
        train_size: args.train_size,
        test_size: args.test_size,
        bn: args.bn,
        chunk_size: args.chunk_size,
        names: Some(super::flag),
        device: args.compute.device,
        data_dir: args.compute.data,
        threads: args.compute.threads,
        command: std::env::args().collect(),
    };
    let r = import::import(&opts)?;
    println!(
        "{} {} snapshot(s) of run `{}` into {}: network widths {:?}, {} classes",
        if r.created { "created, wrote" } else { "wrote" },
        r.snapshots.len(),
        r.run,
        r.store.display(),
        r.net.widths,
        r.net.classes
    );
    for s in &r.snapshots {
        let mut line = format!(
            "  snapshot {:>3} (epoch {}): {} ({}, {} names{}, crc32 {})",
            s.id,
            s.epoch,
            s.file.display(),
            s.format,
            s.layout,
            s.prefix
                .as_deref()
                .map_or_else(String::new, |p| format!(" under `{p}`")),
            s.crc32
        );
        if !s.converted.is_empty() {
            line += &format!(", {} tensor(s) converted to float32", s.converted.len());
        }
        if let Some(m) = &s.metrics {
            line += &format!(
                "; train loss {:.6}, error {:.2}%; test loss {:.6}, error {:.2}% (BN {})",
                m.train_loss,
                m.train_error,
                m.test_loss,
                m.test_error,
                r.eval.bn.as_str()
            );
        }
        println!("{line}");
    }
    match (&r.run_json, r.run_json_action.as_str()) {
        (Some(p), "written") => println!(
            "wrote {} (BN {}, {})",
            p.display(),
            r.eval.bn.as_str(),
            if r.data.is_some() {
                "with the data settings"
            } else {
                "no data settings: give --train-size and --test-size to surface, --sample to hessian"
            }
        ),
        (Some(p), "completed") => println!("added the files to {}", p.display()),
        (Some(p), _) => println!("kept {} as it was (its settings apply)", p.display()),
        (None, _) => println!(
            "no run.json beside the store: give --train-size and --test-size to surface, --sample to hessian"
        ),
    }
    Ok(())
}
