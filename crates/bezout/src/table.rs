//! Plain-text tables of counts and checks, as `landscape bezout` prints them.

use std::fmt::Write;

use crate::check::{CheckReport, SquareReport};
use crate::counting::{Architecture, CountParams, CountReport, Determinacy, EquationsPerPoint};
use crate::error::Result;
use crate::magnitude::group_digits;
use crate::relu_fit::ReluFitParams;

/// What to put in the counting table.
#[derive(Debug, Clone)]
pub struct CountTable {
    arch: Architecture,
    n: u64,
    ks: Vec<u32>,
    mixed: Option<Vec<u32>>,
    epsilons: Vec<f64>,
    radius: f64,
    batch_norm: bool,
}

impl CountTable {
    /// A table for `arch` and `n` data points, rows for `k = 2, 3`, ReLU fits for
    /// `epsilon = 0.1, 0.03, 0.01` on `[-4, 4]`.
    pub fn new(arch: Architecture, n: u64) -> Self {
        Self {
            arch,
            n,
            ks: vec![2, 3],
            mixed: None,
            epsilons: vec![0.1, 0.03, 0.01],
            radius: 4.0,
            batch_norm: false,
        }
    }
    /// Uniform activation degrees, one row each.
    pub fn ks(mut self, ks: Vec<u32>) -> Self {
        self.ks = ks;
        self
    }
    /// One extra row with one degree per activated layer.
    pub fn mixed(mut self, ks: Option<Vec<u32>>) -> Self {
        self.mixed = ks;
        self
    }
    /// Sup-norm accuracies for the ReLU fits (each adds a row with the degree it needs).
    pub fn epsilons(mut self, eps: Vec<f64>) -> Self {
        self.epsilons = eps;
        self
    }
    /// Half-width `r` of the interval `[-r, r]` of the ReLU fits.
    pub fn radius(mut self, r: f64) -> Self {
        self.radius = r;
        self
    }
    /// Whether the network has batch normalisation (adds the assumption to the notes).
    pub fn batch_norm(mut self, bn: bool) -> Self {
        self.batch_norm = bn;
        self
    }

    /// Render the table.
    pub fn render(&self) -> Result<String> {
        let mut s = String::new();
        let arch = &self.arch;
        let w = arch.weights();
        let _ = writeln!(
            s,
            "Network: {}\n  W = {} weights, L = {} weight layers ({} with an activation), {} output(s); N = {} data points",
            arch.name(),
            group_digits(&w.to_string()),
            arch.depth(),
            arch.activated_layers(),
            arch.outputs(),
            group_digits(&self.n.to_string())
        );
        // Per-layer degrees for the first k.
        let k0 = self.ks.first().copied().unwrap_or(2);
        let d0 = arch.degrees_uniform(k0)?;
        let name_w = arch
            .layers()
            .iter()
            .map(|l| l.name().len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "\n  {:<name_w$}  {:>9}  {:>6}  {:>12}  {:>10}",
            "layer",
            "weights",
            "act",
            format!("deg_w (k={k0})"),
            "deg_x"
        );
        for (i, l) in arch.layers().iter().enumerate() {
            let _ = writeln!(
                s,
                "  {:<name_w$}  {:>9}  {:>6}  {:>12}  {:>10}",
                l.name(),
                group_digits(&l.weights().to_string()),
                if l.activated() {
                    format!("deg {k0}")
                } else {
                    "linear".into()
                },
                d0.per_layer_in_weights()[i].to_string(),
                d0.per_layer_in_input()[i].to_string()
            );
        }

        // Rows: uniform ks, mixed, then degrees needed for each epsilon.
        let mut rows: Vec<(String, CountReport)> = Vec::new();
        for &k in &self.ks {
            rows.push((
                format!("k = {k}"),
                CountParams::new(arch.clone(), self.n).degree(k).fit()?,
            ));
        }
        if let Some(m) = &self.mixed {
            rows.push((
                format!("k = {m:?}"),
                CountParams::new(arch.clone(), self.n)
                    .mixed_degrees(m.clone())
                    .fit()?,
            ));
        }
        let mut relu_lines = Vec::new();
        if !self.epsilons.is_empty() {
            let max_deg = 2000;
            let curve = ReluFitParams::new(self.radius)
                .nodes(4096)
                .grid(4001)
                .error_curve(max_deg)?;
            for &eps in &self.epsilons {
                let found = curve.degree_for(eps);
                relu_lines.push(format!(
                    "  {:>8}  {:>14}  {:>14.1}  {:>18.1}",
                    eps,
                    found.map_or_else(|| format!("> {max_deg}"), |d| d.to_string()),
                    curve.chebyshev_rule(eps),
                    curve.bernstein_rule(eps)
                ));
                if let Some(d) = found.filter(|&d| d >= 1) {
                    let k = u32::try_from(d).unwrap_or(u32::MAX);
                    rows.push((
                        format!("k = {k} (eps {eps})"),
                        CountParams::new(arch.clone(), self.n).degree(k).fit()?,
                    ));
                }
            }
        }
        let _ = writeln!(
            s,
            "\n  Zero-error equations f(w; x_i) = y_i, one per data point (E = N = {}), each of degree D in the weights:",
            group_digits(&self.n.to_string())
        );
        let _ = writeln!(
            s,
            "  {:<20} {:>12} {:>15} {:>12} {:>25} {:>25} {:>25} {:>25}",
            "activation",
            "D (exact)",
            "paper k^L",
            "deg in x",
            "Bezout D^N",
            "paper k^(LN)",
            "real sqrt(D^N)",
            "paper k^(LN/2)"
        );
        for (label, r) in &rows {
            let dash = || "-".to_string();
            let _ = writeln!(
                s,
                "  {:<20} {:>12} {:>15} {:>12} {:>25} {:>25} {:>25} {:>25}",
                label,
                short(&r.degrees().in_weights().to_string()),
                r.degrees()
                    .paper_estimate()
                    .map_or_else(dash, |p| short(&p.to_string())),
                short(&r.degrees().in_input().to_string()),
                r.bezout().to_string(),
                r.paper_bezout().map_or_else(dash, ToString::to_string),
                r.real_estimate().to_string(),
                r.paper_real().map_or_else(dash, ToString::to_string),
            );
        }
        let base = CountParams::new(arch.clone(), self.n).degree(k0).fit()?;
        let _ = writeln!(
            s,
            "\n  Solution set: dimension W - N = {} ({}).",
            group_digits_signed(base.dimension()),
            base.determinacy()
        );
        if arch.outputs() > 1 {
            let all = CountParams::new(arch.clone(), self.n)
                .degree(k0)
                .equations_per_point(EquationsPerPoint::AllOutputs)
                .fit()?;
            let _ = writeln!(
                s,
                "  Regressing all {} outputs instead (one-hot targets): E = {} equations, W - E = {} ({}){}",
                arch.outputs(),
                group_digits(&all.equations().to_string()),
                group_digits_signed(all.dimension()),
                all.determinacy(),
                if all.determinacy() == Determinacy::Over {
                    ": exact zero-error regression is generically impossible; classification only needs \
                     margin inequalities, whose solution set is open (dimension W)."
                } else {
                    "."
                }
            );
        }
        if !relu_lines.is_empty() {
            let _ = writeln!(
                s,
                "\n  ReLU on [-{r}, {r}] by a least-squares polynomial at 4096 Chebyshev nodes (sup error on a 4001-point grid):",
                r = self.radius
            );
            let _ = writeln!(
                s,
                "  {:>8}  {:>14}  {:>14}  {:>18}",
                "epsilon", "degree needed", "r/(pi eps)", "best, b r/(2 eps)"
            );
            for l in relu_lines {
                let _ = writeln!(s, "{l}");
            }
        }
        let _ = writeln!(s, "\n  Notes:");
        let _ = writeln!(
            s,
            "  - D is exact: d_l = k_l (1 + d_(l-1)), d_0 = 0 (a weight times the previous output, plus a bias, then \
             the activation). For a chain of L layers with a linear output layer D = 1 + k + ... + k^(L-1) = \
             (k^L - 1)/(k - 1), about k^L/(k - 1): the paper's k^L treats the output layer as activated too, so for \
             large k its exponent is one layer too many. For k = 2 the two nearly agree. Paper L = {}.",
            arch.paper_depth()
        );
        let _ = writeln!(
            s,
            "  - Bezout D^N bounds the isolated complex solutions of a square system; for W > N it applies to the \
             square system left after fixing W - N weights at generic values. sqrt(D^N) is the expected number of \
             real solutions of a random (Kostlan) system of those degrees (Shub-Smale); the network's system is \
             not random, so it is an order of magnitude, not a bound."
        );
        if self.batch_norm {
            let _ = writeln!(
                s,
                "  - Batch normalisation is treated as an affine map with fixed statistics (as at inference): with \
                 batch statistics it divides by sqrt(var + eps), a function of the weights, and the network is no \
                 longer polynomial in them. BN without affine also makes each hidden layer invariant to rescaling its \
                 weights: one more flat direction per BN layer."
            );
        }
        Ok(s)
    }
}

fn short(digits: &str) -> String {
    if digits.len() <= 12 {
        group_digits(digits)
    } else {
        format!("{}.{}e{}", &digits[..1], &digits[1..3], digits.len() - 1)
    }
}

fn group_digits_signed(v: i128) -> String {
    if v < 0 {
        format!("-{}", group_digits(&v.unsigned_abs().to_string()))
    } else {
        group_digits(&v.to_string())
    }
}

/// The numeric-check table, one row per case.
pub fn check_table(cases: &[(String, CheckReport)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<30} {:>4} {:>4} {:>5} {:>7} {:>9} {:>9} {:>9} {:>11} {:>12} {:>12} {:>5}",
        "network",
        "W",
        "N",
        "W-N",
        "solved",
        "max |r|",
        "rank(J)",
        "zero eig",
        "of W-N",
        "max|l0|/lmax",
        "min l+/lmax",
        "neg"
    );
    for (name, r) in cases {
        let sols = r.solutions();
        let range = |f: &dyn Fn(&crate::check::Solution) -> usize| {
            let lo = sols.iter().map(f).min().unwrap_or(0);
            let hi = sols.iter().map(f).max().unwrap_or(0);
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        };
        let max_r = sols.iter().map(|s| s.residual()).fold(0.0, f64::max);
        let max0 = sols
            .iter()
            .map(|s| s.max_zero_eigenvalue())
            .fold(0.0, f64::max);
        let minp = sols
            .iter()
            .map(|s| s.min_positive_eigenvalue())
            .fold(f64::INFINITY, f64::min);
        let ok = r.all_degenerate_as_predicted();
        let _ =
            writeln!(
            s,
            "{:<30} {:>4} {:>4} {:>5} {:>7} {:>9.1e} {:>9} {:>9} {:>11} {:>12.1e} {:>12.1e} {:>5}",
            name,
            r.w(),
            r.n(),
            r.w() - r.n(),
            format!("{}/{}", sols.len(), r.starts()),
            max_r,
            range(&|s| s.jacobian_rank()),
            range(&|s| s.zero_eigenvalues()),
            if ok { format!("= {} ok", r.w() - r.n()) } else { format!("!= {}", r.w() - r.n()) },
            max0,
            minp,
            range(&|s| s.negative_eigenvalues()),
        );
    }
    let _ = writeln!(
        s,
        "\nzero eig: Hessian eigenvalues with |l| <= 1e-12 lmax (the default) (exact Hessian J^T J + sum r_i Hess f_i); rank(J): \
         singular values above max(N, W) eps sigma_max."
    );
    s
}

/// The square-case table.
pub fn square_table(name: &str, r: &SquareReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<30} {:>4} {:>7} {:>10} {:>9} {:>11} {:>4} {:>10} {:>12} {:>13}",
        "square case (W = N)",
        "W",
        "starts",
        "converged",
        "distinct",
        "mod. symm.",
        "D",
        "Bezout D^N",
        "sqrt(D^N)",
        "paper k^(LN)"
    );
    let _ = writeln!(
        s,
        "{:<30} {:>4} {:>7} {:>10} {:>9} {:>11} {:>4} {:>10} {:>12} {:>13}",
        name,
        r.w(),
        r.starts(),
        r.converged(),
        r.distinct(),
        format!("{} (|G|={})", r.orbits(), r.symmetry_order()),
        r.degree().to_string(),
        r.bezout().to_string(),
        r.real_estimate().to_string(),
        r.paper_bezout().to_string()
    );
    let _ = writeln!(
        s,
        "\ndistinct: nonsingular real solutions whose weight vectors differ by more than 1e-6 (1 + |w|); \
         mod. symm.: the same after mapping each to a canonical form under unit permutations (and sign flips \
         for odd or even activations), G the symmetry group. Random starts find a lower bound on the real count."
    );
    s
}
