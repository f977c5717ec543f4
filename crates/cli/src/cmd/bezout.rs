//! `landscape bezout`: the Bezout counting table of Section 3 / Appendix A,
//! and `landscape bezout check`: the numeric check of Proposition 1.
use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_bezout::table::{check_table, square_table, CountTable};
use landscape_bezout::{
    Activation, Architecture, NumericCheckParams, PolyNet, SquareCountParams, PAPER_CIFAR_WIDTHS,
};

const EXAMPLES: &str = "\
Examples:
  landscape bezout --preset paper-cifar
  landscape bezout --preset paper-cifar --widths 32,64,128,77 --k 2,3,7 --epsilon 0.1,0.01
  landscape bezout --preset appendix-a --units 4 --n 40
  landscape bezout --mlp 10,50,50,1 --n 1000 --mixed 2,3
  landscape bezout check
  landscape bezout check --inputs 4 --hidden 10,10 --activation cubic --n 100 --starts 3";

/// Bezout degree and zero counts for a polynomial network; `check` verifies
/// numerically that zero-error minima are degenerate.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct BezoutArgs {
    #[command(subcommand)]
    command: Option<BezoutCommand>,
    #[command(flatten)]
    count: CountArgs,
}

#[derive(Subcommand)]
enum BezoutCommand {
    /// Find zero-error solutions of small polynomial networks and check their degeneracy.
    Check(CheckArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// The paper's CIFAR-10 network (five 3x3 stride-2 convs, BN) and N = 50,000.
    PaperCifar,
    /// The binary-tree example of Appendix A (four inputs, three nodes), N = 8 by default.
    AppendixA,
}

#[derive(clap::Args)]
struct CountArgs {
    /// Network preset (ignored when --mlp is given).
    #[arg(long, value_enum, default_value = "paper-cifar")]
    preset: Preset,
    /// paper-cifar: output channels of paper layers 2..5 (the default gives 188,810 weights).
    #[arg(long, value_delimiter = ',', num_args = 4)]
    widths: Option<Vec<u64>>,
    /// appendix-a: ridge units per node (1 is the paper's equation (5)).
    #[arg(long, default_value_t = 1)]
    units: u64,
    /// A custom fully connected network: inputs,hidden...,outputs.
    #[arg(long, value_delimiter = ',')]
    mlp: Option<Vec<u64>>,
    /// Number of data points N (default: 50,000 for paper-cifar, 8 for appendix-a, 100 for --mlp).
    #[arg(long)]
    n: Option<u64>,
    /// Activation degrees k, one table row each.
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    k: Vec<u32>,
    /// One extra row with mixed degrees, one per activated layer.
    #[arg(long, value_delimiter = ',')]
    mixed: Option<Vec<u32>>,
    /// Sup-norm accuracies of the ReLU approximation (each adds a row with the degree it needs).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.03,0.01")]
    epsilon: Vec<f64>,
    /// The ReLU is approximated on [-r, r] (BN'd pre-activations: a few standard deviations).
    #[arg(long, default_value_t = 4.0)]
    radius: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivationKind {
    /// z + z^2/2
    Quadratic,
    /// z + z^2/2 + z^3/6
    Cubic,
    /// z + z^3/3 (odd: sign flips are symmetries)
    OddCubic,
}

impl ActivationKind {
    fn build(self) -> Activation {
        match self {
            Self::Quadratic => Activation::quadratic(),
            Self::Cubic => Activation::cubic(),
            Self::OddCubic => Activation::odd_cubic(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Quadratic => "quad",
            Self::Cubic => "cubic",
            Self::OddCubic => "oddcubic",
        }
    }
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Inputs of a custom case (with --hidden and --n); without it, the default suite runs.
    #[arg(long, requires_all = ["hidden", "n"])]
    inputs: Option<usize>,
    /// Hidden layer widths of the custom case.
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Activation of the custom case.
    #[arg(long, value_enum, default_value = "cubic")]
    activation: ActivationKind,
    /// Data points of the custom case (N < W).
    #[arg(long)]
    n: Option<usize>,
    /// Random starts per case.
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Random starts for the square case (0: skip it).
    #[arg(long, default_value_t = 300)]
    square_starts: usize,
    /// Seed of the data and the starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: BezoutArgs) -> Result<()> {
    match args.command {
        Some(BezoutCommand::Check(c)) => run_check(c),
        None => run_count(args.count),
    }
}

#[allow(clippy::print_stdout)]
fn run_count(a: CountArgs) -> Result<()> {
    let (arch, n, bn) = match (&a.mlp, a.preset) {
        (Some(sizes), _) => (Architecture::mlp(sizes)?, a.n.unwrap_or(100), false),
        (None, Preset::PaperCifar) => {
            let widths = match &a.widths {
                Some(w) => <[u64; 4]>::try_from(w.as_slice())
                    .ok()
                    .context("--widths takes 4 values")?,
                None => PAPER_CIFAR_WIDTHS,
            };
            (
                Architecture::paper_cifar(widths)?,
                a.n.unwrap_or(50_000),
                true,
            )
        }
        (None, Preset::AppendixA) => (Architecture::appendix_a(a.units)?, a.n.unwrap_or(8), false),
    };
    if a.k.is_empty() {
        bail!("--k needs at least one degree");
    }
    let table = CountTable::new(arch, n)
        .ks(a.k)
        .mixed(a.mixed)
        .epsilons(a.epsilon)
        .radius(a.radius)
        .batch_norm(bn)
        .render()?;
    print!("{table}");
    Ok(())
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} starts ({elapsed})")
    {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

#[allow(clippy::print_stdout)]
fn run_check(a: CheckArgs) -> Result<()> {
    let cases: Vec<(usize, Vec<usize>, ActivationKind, usize)> = match (a.inputs, a.hidden, a.n) {
        (Some(d), Some(h), Some(n)) => vec![(d, h, a.activation, n)],
        _ => vec![
            (3, vec![4], ActivationKind::Cubic, 12),
            (4, vec![8], ActivationKind::Cubic, 24),
            (3, vec![6, 6], ActivationKind::Quadratic, 30),
            (4, vec![8, 8], ActivationKind::Cubic, 60),
        ],
    };
    let mut reports = Vec::new();
    for (d, hidden, act, n) in cases {
        let net = PolyNet::new(d, &hidden, act.build(), true)?;
        let name = format!("d={d} h={hidden:?} {}", act.name());
        let pb = bar(a.starts, &name);
        let report = NumericCheckParams::new(net, n)
            .starts(a.starts)
            .seed(a.seed)
            .run_with_progress(|_| pb.inc(1))
            .with_context(|| format!("numeric check of {name}"))?;
        pb.finish_and_clear();
        reports.push((name, report));
    }
    println!("Numeric check of Proposition 1 (seed {}): Levenberg-Marquardt from random starts, analytic Jacobian, exact Hessian\n", a.seed);
    print!("{}", check_table(&reports));
    if a.square_starts > 0 {
        let params = SquareCountParams::tiny()?
            .starts(a.square_starts)
            .seed(a.seed);
        let pb = bar(a.square_starts, "square case");
        let report = params.run_with_progress(|_| pb.inc(1))?;
        pb.finish_and_clear();
        println!();
        print!("{}", square_table("d=2 h=[2] cubic, no out bias", &report));
    }
    Ok(())
}
