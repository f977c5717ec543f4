//! Barriers (linear mode connectivity) between the pairs of models an
//! experiment creates: a branch and the main run, two runs retrained from
//! the same model. Every pair's straight line `(1 - t) a + t b` is evaluated
//! with the experiment's evaluator (its BN policy) at the configured `t` in
//! `[0, 1]`; the endpoints' values are the stored evaluations of `a` and `b`
//! (the same computation), the points in between are evaluated and not
//! stored as snapshots. The barrier of each metric is
//! [`landscape_surface::Barrier`]: the largest excess over the chord between
//! the endpoints' values, where it is, and the lowest value on the line.
//!
//! Results go to `<dir>/barriers.jsonl` (one line per pair, appended as soon
//! as the pair is done, so an interrupted analysis resumes; a line is reused
//! only for the same snapshots, `t` values and BN policy) and
//! `<dir>/barriers.csv`.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net as net;
use landscape_surface::Barrier;
use landscape_trajectory::SnapshotId;
use serde::{Deserialize, Serialize};

use landscape_engine::config::ensure;
use landscape_engine::eval::Metrics;
use landscape_engine::provenance::write_atomic;
use landscape_engine::recorder::{progress, Recorder};
use landscape_engine::ExperimentError;

/// File of the per-pair results (one JSON object per line).
pub const BARRIERS_JSONL: &str = "barriers.jsonl";
/// The table of every pair.
pub const BARRIERS_CSV: &str = "barriers.csv";

/// One pair of stored models.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// What the pair is (e.g. `final: retrained 1 vs 3`).
    pub label: String,
    /// The model at `t = 0`.
    pub a: SnapshotId,
    /// The model at `t = 1`.
    pub b: SnapshotId,
}

/// `points` values of `t` evenly spaced in `[0, 1]`, with 0 and 1 exact.
pub fn pair_ts(points: usize) -> Vec<f64> {
    let n = points.max(2);
    (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
}

/// Checks a configured number of barrier points (`key` names it in the
/// error): 0 (no pair barriers) or 2..=1001, so that `t = 0` and `t = 1` are
/// among them.
pub fn validate_points(points: usize, key: &str) -> Result<(), ExperimentError> {
    ensure(
        points != 1 && points <= 1001,
        key,
        format!(
            "{points} must be 0 (no pair barriers) or between 2 and 1001 (t = 0 and t = 1 at least)"
        ),
    )
}

/// The line between one pair and its barriers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairBarrier {
    /// [`Pair::label`].
    pub label: String,
    /// Snapshot at `t = 0`.
    pub a: u64,
    /// Snapshot at `t = 1`.
    pub b: u64,
    /// The BN policy of every value.
    pub bn: String,
    /// The `t` of every point.
    pub ts: Vec<f64>,
    /// The metrics at every point.
    pub points: Vec<Metrics>,
    /// Barrier of the training loss.
    pub train_loss: Barrier,
    /// Barrier of the training error (percentage points).
    pub train_error: Barrier,
    /// Barrier of the test loss.
    pub test_loss: Barrier,
    /// Barrier of the test error (percentage points).
    pub test_error: Barrier,
}

impl PairBarrier {
    /// The barriers of the metrics along `points` at `ts`.
    pub fn of(pair: &Pair, bn: &str, ts: &[f64], points: Vec<Metrics>) -> Result<Self> {
        let col = |f: fn(&Metrics) -> f64| -> Vec<f64> { points.iter().map(f).collect() };
        let b = |f: fn(&Metrics) -> f64, what: &str| {
            Barrier::of(ts, &col(f)).with_context(|| format!("{}: {what} barrier", pair.label))
        };
        Ok(PairBarrier {
            label: pair.label.clone(),
            a: pair.a.get(),
            b: pair.b.get(),
            bn: bn.to_owned(),
            ts: ts.to_vec(),
            train_loss: b(|m| m.train_loss, "training loss")?,
            train_error: b(|m| m.train_error, "training error")?,
            test_loss: b(|m| m.test_loss, "test loss")?,
            test_error: b(|m| m.test_error, "test error")?,
            points,
        })
    }

    fn same_inputs(&self, pair: &Pair, bn: &str, ts: &[f64]) -> bool {
        self.a == pair.a.get() && self.b == pair.b.get() && self.bn == bn && self.ts == ts
    }
}

/// Reads the finished pairs of `path` (a missing file is empty; a last line
/// cut short by an interruption is dropped).
fn read_done(path: &Path) -> Result<Vec<PairBarrier>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<PairBarrier>(line) {
            Ok(p) => out.push(p),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!(file = %path.display(), "dropping an unfinished last line");
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{} line {}: not a pair barrier (delete the file to recompute)",
                        path.display(),
                        i + 1
                    )
                })
            }
        }
    }
    Ok(out)
}

/// The barriers of every pair in `pairs` at `ts` (which must hold 0 and 1),
/// reusing the pairs already in `<dir>/barriers.jsonl`; writes
/// `<dir>/barriers.csv`. Returns the barriers in the order of `pairs` and
/// the files written.
pub fn pair_barriers(
    rec: &Recorder<'_>,
    pairs: &[Pair],
    ts: &[f64],
    dir: &Path,
) -> Result<(Vec<PairBarrier>, Vec<PathBuf>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let jsonl = dir.join(BARRIERS_JSONL);
    let bn = rec.evaluator().config().bn.as_str();
    let mut done = read_done(&jsonl)?;
    // Rewrite the file without a cut line before appending to it.
    let mut text = String::new();
    for p in &done {
        text += &serde_json::to_string(p)?;
        text.push('\n');
    }
    write_atomic(&jsonl, text.as_bytes())?;
    let todo: Vec<&Pair> = pairs
        .iter()
        .filter(|p| !done.iter().any(|d| d.same_inputs(p, bn, ts)))
        .collect();
    let interior = ts.iter().filter(|&&t| t != 0.0 && t != 1.0).count();
    let bar = progress((todo.len() * interior) as u64, "barriers");
    for pair in todo {
        let ma = rec.load(pair.a)?;
        let mb = rec.load(pair.b)?;
        let mut points = Vec::with_capacity(ts.len());
        for &t in ts {
            // The endpoints are the stored models, evaluated the same way when stored.
            let m = if t == 0.0 {
                rec.metrics(pair.a)?
            } else if t == 1.0 {
                rec.metrics(pair.b)?
            } else {
                let (_, v) = rec
                    .evaluator()
                    .between(&ma, &mb, t, net::Lerp::F32)
                    .with_context(|| format!("{}: evaluating t = {t}", pair.label))?;
                bar.inc(1);
                v
            };
            points.push(m);
        }
        let pb = PairBarrier::of(pair, bn, ts, points)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&jsonl)
            .with_context(|| format!("opening {}", jsonl.display()))?;
        writeln!(f, "{}", serde_json::to_string(&pb)?)
            .with_context(|| format!("writing {}", jsonl.display()))?;
        tracing::debug!(pair = %pb.label, train_loss_barrier = pb.train_loss.height(), "pair done");
        done.push(pb);
    }
    bar.finish_and_clear();
    let out: Vec<PairBarrier> = pairs
        .iter()
        .map(|p| {
            done.iter()
                .find(|d| d.same_inputs(p, bn, ts))
                .cloned()
                .with_context(|| format!("{}: no barrier computed", p.label))
        })
        .collect::<Result<_>>()?;
    let csv = dir.join(BARRIERS_CSV);
    write_atomic(&csv, csv_text(&out).as_bytes())?;
    Ok((out, vec![jsonl, csv]))
}

/// One row per pair: the snapshots, then per metric the barrier height,
/// where it is and the lowest value on the line.
pub fn csv_text(rows: &[PairBarrier]) -> String {
    let mut text = String::from("pair,a,b,points,bn");
    for m in ["train_loss", "train_error", "test_loss", "test_error"] {
        text += &format!(",{m}_barrier,{m}_barrier_t,{m}_lowest,{m}_a,{m}_b");
    }
    text.push('\n');
    for r in rows {
        text += &format!(
            "\"{}\",{},{},{},{}",
            r.label.replace('"', "'"),
            r.a,
            r.b,
            r.ts.len(),
            r.bn
        );
        for b in [&r.train_loss, &r.train_error, &r.test_loss, &r.test_error] {
            text += &format!(
                ",{},{},{},{},{}",
                b.height(),
                b.t(),
                b.lowest(),
                b.v0(),
                b.v1()
            );
        }
        text.push('\n');
    }
    text
}

/// Summary of a group of pairs for a report line: the number of pairs and the
/// largest and median barrier of the training loss and error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BarrierStats {
    /// Pairs.
    pub pairs: usize,
    /// Largest training-loss barrier.
    pub max_train_loss: f64,
    /// Median training-loss barrier.
    pub median_train_loss: f64,
    /// Largest training-error barrier (points).
    pub max_train_error: f64,
    /// Largest test-error barrier (points).
    pub max_test_error: f64,
}

impl BarrierStats {
    /// Over `rows`.
    pub fn of(rows: &[PairBarrier]) -> Self {
        let mut loss: Vec<f64> = rows.iter().map(|r| r.train_loss.height()).collect();
        loss.sort_by(f64::total_cmp);
        let median = match loss.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => loss[n / 2],
            n => 0.5 * (loss[n / 2 - 1] + loss[n / 2]),
        };
        let max = |f: fn(&PairBarrier) -> f64| rows.iter().map(f).fold(f64::NAN, f64::max);
        BarrierStats {
            pairs: rows.len(),
            max_train_loss: max(|r| r.train_loss.height()),
            median_train_loss: median,
            max_train_error: max(|r| r.train_error.height()),
            max_test_error: max(|r| r.test_error.height()),
        }
    }

    /// One line for a report.
    pub fn line(&self, what: &str) -> String {
        format!(
            "barriers along the straight line, {what} ({} pairs): training loss up to {:.4} (median {:.4}), training error up to {:.2} points, test error up to {:.2} points",
            self.pairs,
            self.max_train_loss,
            self.median_train_loss,
            self.max_train_error,
            self.max_test_error
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(v: f64) -> Metrics {
        Metrics {
            train_loss: v,
            train_error: 10.0 * v,
            test_loss: v + 1.0,
            test_error: 50.0,
        }
    }

    #[test]
    fn pair_barrier_measures_each_metric_over_its_chord() {
        let pair = Pair {
            label: "x".into(),
            a: SnapshotId(3),
            b: SnapshotId(9),
        };
        let ts = pair_ts(5);
        assert_eq!(ts, [0.0, 0.25, 0.5, 0.75, 1.0]);
        let pb = PairBarrier::of(
            &pair,
            "reestimate",
            &ts,
            [1.0, 2.0, 3.5, 1.0, 0.0].map(m).to_vec(),
        )
        .unwrap();
        // Chord at t = 0.5 is 0.5; value 3.5.
        assert!((pb.train_loss.height() - 3.0).abs() < 1e-12);
        assert_eq!(pb.train_loss.t(), 0.5);
        assert!((pb.train_error.height() - 30.0).abs() < 1e-9);
        assert_eq!(pb.test_error.height(), 0.0);
        assert_eq!(pb.train_loss.lowest(), 0.0);
        let csv = csv_text(std::slice::from_ref(&pb));
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("\"x\",3,9,5,reestimate,3,0.5,0,1,0"));
        let s = BarrierStats::of(&[pb.clone(), pb]);
        assert_eq!(s.pairs, 2);
        assert!((s.max_train_loss - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_cut_last_line_is_dropped_and_other_garbage_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BARRIERS_JSONL);
        let pair = Pair {
            label: "p".into(),
            a: SnapshotId(1),
            b: SnapshotId(2),
        };
        let pb = PairBarrier::of(&pair, "running", &pair_ts(2), vec![m(1.0), m(2.0)]).unwrap();
        let line = serde_json::to_string(&pb).unwrap();
        std::fs::write(&path, format!("{line}\n{}", &line[..20])).unwrap();
        assert_eq!(read_done(&path).unwrap(), vec![pb]);
        std::fs::write(&path, format!("{}\n{line}\n", &line[..20])).unwrap();
        assert!(read_done(&path).is_err());
    }
}
