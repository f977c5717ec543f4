//! Analysis pieces every figure uses: selecting recorded points, MDS of one
//! layer's weights, the points CSV (one schema, shared with `landscape mds`),
//! weight-space distances, and verdicts with their numbers.
use std::collections::BTreeSet;

use anyhow::{Context, Result};
use landscape_mds::{ClassicalMds, Dissimilarity, Embedding};
use landscape_trajectory::{SnapshotId, SnapshotInfo, Store};
use ndarray::Array2;
use serde::Serialize;

use crate::eval::Metrics;
use crate::identity::RunId;

/// A recorded model: its snapshot, identity, epoch and metrics.
#[derive(Clone, Debug)]
pub struct Point {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its trajectory.
    pub run: RunId,
    /// Its epoch.
    pub epoch: u32,
    /// Its evaluated metrics.
    pub metrics: Metrics,
}

/// Every snapshot of `store` whose identity passes `keep`, in store order.
/// Snapshots without an identity or metrics are an error (they were not
/// written by the engine).
pub fn points(store: &Store, keep: impl Fn(&RunId) -> bool) -> Result<Vec<Point>> {
    let mut out = Vec::new();
    for s in store.snapshots() {
        let run = RunId::from_meta(s.meta())
            .with_context(|| format!("snapshot {} has no run identity", s.id()))?;
        if !keep(&run) {
            continue;
        }
        out.push(Point {
            id: s.id(),
            epoch: s.meta().epoch().unwrap_or(0),
            metrics: Metrics::from_map(s.meta().metrics())
                .with_context(|| format!("snapshot {} has no train/test metrics", s.id()))?,
            run,
        });
    }
    Ok(out)
}

/// The trainable tensors of paper layer `layer` (weight and bias).
pub fn layer_tensors(layer: usize) -> Vec<String> {
    vec![format!("layer{layer}.weight"), format!("layer{layer}.bias")]
}

/// The weights (and biases) of `layer` of each snapshot, one row each.
pub fn layer_matrix(store: &Store, ids: &[SnapshotId], layer: usize) -> Result<Array2<f32>> {
    let names = layer_tensors(layer);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(store
        .read_matrix_ids(ids, &refs)
        .with_context(|| format!("reading layer {layer}"))?
        .into_parts()
        .1)
}

/// Classical MDS (1 - cosine) of `layer` over `ids`, in `dims` dimensions.
pub fn layer_mds(
    store: &Store,
    ids: &[SnapshotId],
    layer: usize,
    dims: usize,
) -> Result<Embedding> {
    let m = layer_matrix(store, ids, layer)?;
    let d = landscape_mds::dissimilarity_matrix(&m, Dissimilarity::Cosine)?;
    Ok(ClassicalMds::params(dims).fit_owned(d)?)
}

/// 1 - cos(a, b), in f64.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 1.0;
    }
    1.0 - ab / (aa.sqrt() * bb.sqrt())
}

/// The name of MDS axis `j` in CSV headers: x, y, z, w, dim5, ...
pub fn axis_name(j: usize) -> String {
    match j {
        0 => "x".into(),
        1 => "y".into(),
        2 => "z".into(),
        3 => "w".into(),
        _ => format!("dim{}", j + 1),
    }
}

/// A CSV field, quoted when it holds a separator, quote or line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The points CSV, one schema for every tool: `id,run,kind,stage,epoch,step`,
/// one column per MDS axis (`x`, `y`, ...; full precision), then every metric
/// any of the snapshots has, sorted by name (empty where a snapshot lacks it).
pub fn points_csv(infos: &[&SnapshotInfo], coords: &Array2<f64>) -> String {
    let metrics: BTreeSet<&str> = infos
        .iter()
        .flat_map(|i| i.meta().metrics().keys().map(String::as_str))
        .collect();
    let mut header: Vec<String> = ["id", "run", "kind", "stage", "epoch", "step"]
        .map(String::from)
        .to_vec();
    header.extend((0..coords.ncols()).map(axis_name));
    header.extend(metrics.iter().map(|m| csv_field(m)));
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut text = header.join(",") + "\n";
    for (info, row_coords) in infos.iter().zip(coords.rows()) {
        let meta = info.meta();
        let mut row = vec![
            info.id().to_string(),
            csv_field(meta.run()),
            csv_field(&meta.kind().name()),
            opt(meta.stage().map(|v| v.to_string())),
            opt(meta.epoch().map(|v| v.to_string())),
            opt(meta.step().map(|v| v.to_string())),
        ];
        row.extend(row_coords.iter().map(|v| format!("{v:.17e}")));
        row.extend(
            metrics
                .iter()
                .map(|m| opt(meta.metric(m).map(|v| v.to_string()))),
        );
        text += &row.join(",");
        text.push('\n');
    }
    text
}

/// Whether a finding of the paper holds here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The numbers meet the threshold.
    #[serde(rename = "holds")]
    Holds,
    /// They do not.
    #[serde(rename = "does not hold")]
    DoesNotHold,
    /// A number reported beside the paper's, not judged.
    #[serde(rename = "reported")]
    Reported,
}

impl Verdict {
    /// `Holds` if `ok`, else `DoesNotHold`.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    }

    /// As printed: `holds`, `does not hold`, `reported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Reported => "reported",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of the paper, its verdict here, the numbers behind it and the
/// threshold it was judged against (from the config).
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Short id, e.g. `walls`.
    pub id: String,
    /// The paper's claim, in words.
    pub claim: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The threshold(s) from the config (`null` for reported numbers).
    pub threshold: serde_json::Value,
    /// The numbers it was judged on.
    pub numbers: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_distance_is_scale_free() {
        let a = [1.0f32, 2.0, 3.0];
        let b = [2.0f32, 4.0, 6.0];
        assert!(cosine_distance(&a, &b).abs() < 1e-12);
        let c = [-1.0f32, -2.0, -3.0];
        assert!((cosine_distance(&a, &c) - 2.0).abs() < 1e-12);
        let d = [3.0f32, 0.0, -1.0];
        assert!((cosine_distance(&a, &d) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn verdict_names() {
        assert_eq!(Verdict::from_bool(true).as_str(), "holds");
        assert_eq!(Verdict::from_bool(false).to_string(), "does not hold");
        assert_eq!(
            serde_json::to_string(&Verdict::DoesNotHold).unwrap_or_default(),
            "\"does not hold\""
        );
    }
}
