//! Perturb-and-retrain, the building block of the paper's Figures 5, 18-37
//! and 41-45: copies of one stored model, each perturbed with its own seeded
//! noise and retrained with BGD, compared with each other (how far apart
//! they end, whether they agree on the test set, what lies on the straight
//! line between two of them).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{PerturbSpec, Phase};
use landscape_trajectory::{SnapshotId, Store};
use serde::Serialize;

use landscape_engine::analysis::{self, LayerView};
use landscape_engine::config::ensure;
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::recorder::Recorder;
use landscape_engine::ExperimentError;

/// Seed of the perturbation of retrained run `run` (0-based) of model
/// `model` (0-based), from the experiment's seed.
pub fn retrain_seed(seed: u64, model: usize, run: usize) -> u64 {
    seed.wrapping_mul(0xD1B5_4A32_D192_ED03)
        .wrapping_add(10_000 * (model as u64 + 1) + run as u64 + 1)
}

/// The identity of retrained run `run` (0-based) of the model named `model`.
pub fn run_id(model: &str, run: usize) -> RunId {
    RunId::Retrained {
        variant: model.to_owned(),
        index: run + 1,
    }
}

/// Checks a perturbation from a config; `key` names it in errors.
pub fn validate_perturb(p: &PerturbSpec, key: &str) -> Result<(), ExperimentError> {
    ensure(
        p.alpha.is_finite() && p.alpha >= 0.0 && p.alpha <= 100.0,
        &format!("{key}.alpha"),
        format!("{} must be a number in [0, 100]", p.alpha),
    )
}

/// `runs` copies of snapshot `parent`, copy `k` perturbed with
/// `retrain_seed(seed, model_index, k)` and trained with `phase` (epochs 0 =
/// right after perturbing, ..., `phase.epochs()`), as runs `model/retrained<k+1>`.
/// Resumes like every trajectory. Returns each run's snapshots by epoch.
#[allow(clippy::too_many_arguments)]
pub fn retrain(
    rec: &Recorder<'_>,
    model: &str,
    model_index: usize,
    parent: SnapshotId,
    perturb: &PerturbSpec,
    phase: &Phase,
    runs: usize,
    seed: u64,
) -> Result<Vec<BTreeMap<u32, SnapshotId>>> {
    (0..runs)
        .map(|k| {
            let s = retrain_seed(seed, model_index, k);
            rec.trajectory(&run_id(model, k), 0, std::slice::from_ref(phase), s, || {
                rec.perturbed(parent, perturb, s)
            })
        })
        .collect()
}

/// Mean, smallest and largest of the pairwise 1 - cos between snapshots on
/// one layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Mean over the pairs.
    pub mean: f64,
    /// Smallest pair.
    pub min: f64,
    /// Largest pair.
    pub max: f64,
}

/// [`Spread`] of `ids` on `layer` (at least two snapshots).
pub fn spread(store: &Store, ids: &[SnapshotId], layer: usize) -> Result<Spread> {
    anyhow::ensure!(ids.len() >= 2, "a spread needs at least two models");
    let m = analysis::layer_matrix(store, ids, layer)?;
    let mut d = Vec::new();
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (m.row(i), m.row(j));
            d.push(analysis::cosine_distance(
                a.as_slice().context("matrix layout")?,
                b.as_slice().context("matrix layout")?,
            ));
        }
    }
    Ok(Spread {
        mean: d.iter().sum::<f64>() / d.len() as f64,
        min: d.iter().copied().fold(f64::INFINITY, f64::min),
        max: d.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Per layer: how far apart perturbed-and-retrained runs are, right after
/// perturbing and at the end.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSpread {
    /// The paper's layer.
    pub layer: usize,
    /// Mean 1 - cos between each perturbed start and the model it came from
    /// (the perturbation's own size).
    pub perturbation: f64,
    /// Pairwise 1 - cos between the perturbed starts.
    pub start: Spread,
    /// Pairwise 1 - cos between the final models.
    pub end: Spread,
    /// `end.mean / start.mean` (NaN if the starts coincide).
    pub ratio: f64,
}

/// [`LayerSpread`] of runs that start at `starts` (perturbed copies of
/// `parent`) and end at `ends`, on `layer`.
pub fn layer_spread(
    store: &Store,
    parent: SnapshotId,
    starts: &[SnapshotId],
    ends: &[SnapshotId],
    layer: usize,
) -> Result<LayerSpread> {
    let mut own = 0.0;
    for &s in starts {
        own += analysis::layer_distance(store, parent, s, layer)?;
    }
    let start = spread(store, starts, layer)?;
    let end = spread(store, ends, layer)?;
    Ok(LayerSpread {
        layer,
        perturbation: own / starts.len().max(1) as f64,
        ratio: if start.mean > 0.0 {
            end.mean / start.mean
        } else {
            f64::NAN
        },
        start,
        end,
    })
}

/// The two agreement matrices of the paper (Figures 18-37) between models
/// from their per-image correctness on one set: `right[r][c]` =
/// P(model c right | model r right), `wrong[r][c]` = P(model c wrong | model
/// r wrong). A row whose model is never right (or never wrong) is NaN.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// P(column right | row right).
    pub right: Vec<Vec<f64>>,
    /// P(column wrong | row wrong).
    pub wrong: Vec<Vec<f64>>,
}

impl Agreement {
    /// From each model's per-image correctness (all of the same length).
    pub fn of(correct: &[Vec<bool>]) -> Result<Agreement> {
        let n = correct.first().map_or(0, Vec::len);
        anyhow::ensure!(
            correct.iter().all(|c| c.len() == n),
            "every model must be judged on the same images"
        );
        let cond = |want: bool| -> Vec<Vec<f64>> {
            correct
                .iter()
                .map(|row| {
                    let given = row.iter().filter(|&&x| x == want).count();
                    correct
                        .iter()
                        .map(|col| {
                            let both = row
                                .iter()
                                .zip(col)
                                .filter(|(&r, &c)| r == want && c == want)
                                .count();
                            if given == 0 {
                                f64::NAN
                            } else {
                                both as f64 / given as f64
                            }
                        })
                        .collect()
                })
                .collect()
        };
        Ok(Agreement {
            right: cond(true),
            wrong: cond(false),
        })
    }

    /// Mean of `m[r][c]` over `r != c`, both in `among` (NaN entries skipped).
    pub fn mean_off_diagonal(m: &[Vec<f64>], among: &[usize]) -> f64 {
        Self::mean_between(m, among, among)
    }

    /// Mean of `m[r][c]` for `r` in `rows`, `c` in `cols`, `r != c`.
    pub fn mean_between(m: &[Vec<f64>], rows: &[usize], cols: &[usize]) -> f64 {
        let v: Vec<f64> = rows
            .iter()
            .flat_map(|&r| cols.iter().map(move |&c| (r, c)))
            .filter(|(r, c)| r != c)
            .filter_map(|(r, c)| m.get(r).and_then(|row| row.get(c)).copied())
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }
}

/// The MDS panels of retrained runs (every layer in `layers`: all runs
/// together, then run 1 alone; points labelled with training error %) and
/// their error and loss curves, as `<dir>/mds.{png,svg}`, `<dir>/curves.{png,svg}`
/// and `<dir>/mds-layer<L>.csv`.
pub fn draw_runs(
    store: &Store,
    dir: &Path,
    title: &str,
    runs: &[RunId],
    layers: &[usize],
) -> Result<(Vec<PathBuf>, Vec<LayerView>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    let label = |p: &analysis::Point| format!("{:.1}", p.metrics.train_error);
    let mut all_views = Vec::new();
    let mut together = Vec::new();
    let mut alone = Vec::new();
    for &layer in layers {
        let all = LayerView::new(store, |r| runs.contains(r), layer, 2)?;
        let csv = dir.join(format!("mds-layer{layer}.csv"));
        all.write_csv(store, &csv)?;
        files.push(csv);
        together.push(plot::ScatterPanel {
            title: format!("layer {layer}: the {} runs", runs.len()),
            groups: runs
                .iter()
                .enumerate()
                .map(|(i, r)| all.group(r, i + 1, label))
                .collect(),
        });
        if let Some(first) = runs.first() {
            let one = LayerView::new(store, |r| r == first, layer, 2)?;
            alone.push(plot::ScatterPanel {
                title: format!("layer {layer}: {} alone", first.label()),
                groups: vec![one.group(first, 1, label)],
            });
        }
        all_views.push(all);
    }
    let panels: Vec<plot::ScatterPanel> = together.into_iter().chain(alone).collect();
    let cols = layers.len().max(1);
    let rows = panels.len().div_ceil(cols) as u32;
    files.extend(plot::scatter_panels(
        &dir.join("mds"),
        &format!("{title}; MDS (1 - cos), labels: training error %"),
        &panels,
        cols,
        (560 * cols as u32 + 100, 520 * rows + 80),
        true,
        11,
    )?);
    if let Some(v) = all_views.first() {
        files.extend(plot::line_panels(
            &dir.join("curves"),
            &format!("{title}: error and loss of the retrained runs"),
            &analysis::metric_curves(&v.points, runs, "BGD epoch of retraining"),
            2,
            (1400, 1000),
        )?);
    }
    Ok((files, all_views))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agreement_is_conditional_probability() {
        // Model 0 right on images 0..4, model 1 on 2..6, model 2 never.
        let c = vec![
            vec![true, true, true, true, false, false],
            vec![false, false, true, true, true, true],
            vec![false; 6],
        ];
        let a = Agreement::of(&c).unwrap();
        assert_eq!(a.right[0][0], 1.0);
        assert_eq!(a.right[0][1], 0.5, "2 of model 0's 4 right images");
        assert_eq!(a.right[1][0], 0.5);
        assert_eq!(a.right[0][2], 0.0);
        assert!(a.right[2][0].is_nan(), "model 2 is never right");
        assert_eq!(a.wrong[2][2], 1.0);
        assert_eq!(
            a.wrong[0][1], 0.0,
            "model 0 wrong on 4, 5; model 1 right there"
        );
        assert_eq!(a.wrong[2][0], 2.0 / 6.0);
        assert_eq!(
            Agreement::mean_off_diagonal(&a.right, &[0, 1]),
            0.5,
            "the diagonal is left out"
        );
        assert_eq!(Agreement::mean_between(&a.right, &[0, 1], &[2]), 0.0);
        assert!(Agreement::of(&[vec![true], vec![true, false]]).is_err());
    }

    #[test]
    fn seeds_differ_per_model_and_run() {
        let mut s = std::collections::BTreeSet::new();
        for m in 0..3 {
            for r in 0..4 {
                assert!(s.insert(retrain_seed(0, m, r)));
            }
        }
        assert_ne!(retrain_seed(0, 0, 0), retrain_seed(1, 0, 0));
    }
}
