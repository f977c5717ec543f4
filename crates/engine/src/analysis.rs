//! Analysis pieces every figure uses: selecting recorded points, MDS of one
//! layer's weights, the points CSV (one schema, shared with `landscape mds`),
//! weight-space distances, verdicts with their numbers, and ([`paired`]) the
//! difference of two test errors on the same images with its interval.
use std::collections::BTreeSet;

use anyhow::{Context, Result};
use landscape_mds::{ClassicalMds, Dissimilarity, Embedding};
use landscape_trajectory::{SnapshotId, SnapshotInfo, Store};
use ndarray::Array2;
use serde::Serialize;

use crate::eval::Metrics;
use crate::identity::RunId;
use crate::plot;

pub mod paired;

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

/// ||a - b|| (Euclidean distance), in f64.
pub fn euclidean_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// ||a|| (Euclidean norm), in f64.
pub fn euclidean_norm(a: &[f32]) -> f64 {
    a.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// A distance between two models' weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Distance {
    /// 1 - cos ([`cosine_distance`]): the paper's, blind to the weights' scale.
    #[serde(rename = "1 - cos")]
    Cosine,
    /// ||a - b|| ([`euclidean_distance`]).
    #[serde(rename = "euclidean")]
    Euclidean,
}

impl Distance {
    /// The distance between `a` and `b`.
    pub fn of(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Distance::Cosine => cosine_distance(a, b),
            Distance::Euclidean => euclidean_distance(a, b),
        }
    }

    /// As written in findings: `1 - cos`, `euclidean`.
    pub fn as_str(self) -> &'static str {
        match self {
            Distance::Cosine => "1 - cos",
            Distance::Euclidean => "euclidean",
        }
    }
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

/// 1 - cos between the `layer` parameters of snapshots `a` and `b`.
pub fn layer_distance(store: &Store, a: SnapshotId, b: SnapshotId, layer: usize) -> Result<f64> {
    let m = layer_matrix(store, &[a, b], layer)?;
    let (ra, rb) = (m.row(0), m.row(1));
    Ok(cosine_distance(
        ra.as_slice().context("matrix layout")?,
        rb.as_slice().context("matrix layout")?,
    ))
}

/// The largest excess of a derived model's value over the worse of its two
/// parents along a trajectory (a barrier: averaged or interpolated models).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Excess {
    /// The largest `mid - max(a, b)` over the common epochs.
    pub max: f64,
    /// The epoch where it occurs (the first, on ties).
    pub epoch: u32,
    /// The derived model's value there.
    pub value: f64,
}

/// [`Excess`] of `mid` over `max(a, b)`, epoch by epoch, over the epochs all
/// three have (`None` if there is none).
pub fn max_excess(
    mid: &std::collections::BTreeMap<u32, f64>,
    a: &std::collections::BTreeMap<u32, f64>,
    b: &std::collections::BTreeMap<u32, f64>,
) -> Option<Excess> {
    let mut best: Option<Excess> = None;
    for (&e, &m) in mid {
        let (Some(&x), Some(&y)) = (a.get(&e), b.get(&e)) else {
            continue;
        };
        let ex = m - x.max(y);
        if best.is_none_or(|b| ex > b.max) {
            best = Some(Excess {
                max: ex,
                epoch: e,
                value: m,
            });
        }
    }
    best
}

/// Points of one MDS picture: the selected snapshots, their 2-D (or k-D)
/// classical MDS of one layer, and the standard ways to draw and save them.
pub struct LayerView {
    /// The paper's layer number.
    pub layer: usize,
    /// The points, in store order (rows of the embedding).
    pub points: Vec<Point>,
    /// The embedding.
    pub embedding: Embedding,
}

impl LayerView {
    /// MDS (1 - cosine, `dims` axes) of `layer` over the snapshots whose
    /// identity passes `keep`.
    pub fn new(
        store: &Store,
        keep: impl Fn(&RunId) -> bool,
        layer: usize,
        dims: usize,
    ) -> Result<Self> {
        let points = points(store, keep)?;
        let ids: Vec<SnapshotId> = points.iter().map(|p| p.id).collect();
        let embedding = layer_mds(store, &ids, layer, dims)?;
        Ok(LayerView {
            layer,
            points,
            embedding,
        })
    }

    /// Writes the points CSV ([`points_csv`]) atomically to `path`.
    pub fn write_csv(&self, store: &Store, path: &std::path::Path) -> Result<()> {
        let infos: Vec<&SnapshotInfo> = self
            .points
            .iter()
            .map(|p| store.get(p.id))
            .collect::<Result<_, _>>()?;
        crate::provenance::write_atomic(
            path,
            points_csv(&infos, self.embedding.coordinates()).as_bytes(),
        )
    }

    /// The points of `run` as a connected scatter group in palette colour
    /// `color`, each drawn as `label(point)` with a tooltip (epoch, snapshot,
    /// training and test error).
    pub fn group(
        &self,
        run: &RunId,
        color: usize,
        label: impl Fn(&Point) -> String,
    ) -> plot::Group {
        let c = self.embedding.coordinates();
        plot::Group {
            name: run.label(),
            color: plot::palette(color),
            points: self
                .points
                .iter()
                .enumerate()
                .filter(|(_, p)| &p.run == run)
                .map(|(k, p)| plot::LabeledPoint {
                    x: c[[k, 0]],
                    y: c[[k, 1]],
                    label: label(p),
                    tooltip: Some(format!(
                        "epoch {}, snapshot {}, train error {:.2}%, test error {:.2}%",
                        p.epoch, p.id, p.metrics.train_error, p.metrics.test_error
                    )),
                })
                .collect(),
            connect: true,
        }
    }

    /// The metrics of the point of `run` at `epoch`.
    pub fn metrics(&self, run: &RunId, epoch: u32) -> Option<Metrics> {
        self.points
            .iter()
            .find(|p| &p.run == run && p.epoch == epoch)
            .map(|p| p.metrics)
    }

    /// One metric of `run`, by epoch.
    pub fn series(
        &self,
        run: &RunId,
        f: fn(&Metrics) -> f64,
    ) -> std::collections::BTreeMap<u32, f64> {
        self.points
            .iter()
            .filter(|p| &p.run == run)
            .map(|p| (p.epoch, f(&p.metrics)))
            .collect()
    }
}

/// The four standard curve panels (training and test error and loss against
/// epoch) of `runs`, colour `i` for `runs[i]`.
pub fn metric_curves(points: &[Point], runs: &[RunId], x_label: &str) -> Vec<plot::LinePanel> {
    let panel = |title: &str, y: &str, f: fn(&Metrics) -> f64| plot::LinePanel {
        title: title.to_owned(),
        x_label: x_label.to_owned(),
        y_label: y.to_owned(),
        curves: runs
            .iter()
            .enumerate()
            .map(|(i, r)| plot::Curve {
                name: r.label(),
                color: plot::palette(i),
                points: points
                    .iter()
                    .filter(|p| &p.run == r)
                    .map(|p| (f64::from(p.epoch), f(&p.metrics)))
                    .collect(),
            })
            .collect(),
    };
    vec![
        panel("training error", "error %", |m| m.train_error),
        panel("test error", "error %", |m| m.test_error),
        panel("training loss", "loss", |m| m.train_loss),
        panel("test loss", "loss", |m| m.test_loss),
    ]
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
    /// Judged against an interval that straddles the threshold: undecided
    /// at this scale (more images or seeds could decide it).
    #[serde(rename = "undecided")]
    Undecided,
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

    /// As printed: `holds`, `does not hold`, `reported`, `undecided`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Reported => "reported",
            Verdict::Undecided => "undecided",
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

/// Most array elements shown in a terminal line ([`number_items`]).
const MAX_SHOWN: usize = 8;

/// A number as a reader wants it in a terminal: integers whole, other values
/// to 4 significant digits (scientific below 1e-3 or from 1e6).
pub fn short_number(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let digits = (3 - a.log10().floor() as i32).max(0) as usize;
    let t = format!("{x:.digits$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        t
    }
}

fn short_value(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "-".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), short_number),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let shown: Vec<String> = a.iter().take(MAX_SHOWN).map(short_value).collect();
            let more = a.len().saturating_sub(MAX_SHOWN);
            if more > 0 {
                format!("[{}, ... {more} more]", shown.join(", "))
            } else {
                format!("[{}]", shown.join(", "))
            }
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k} {}", short_value(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A finding's numbers (or threshold) as `key = value` items for a terminal:
/// nested objects flattened with dotted keys, numbers shortened
/// ([`short_number`]), long arrays cut to their first 8 elements with a count
/// of the rest (`summary.json` has them all). A bare value is one item.
pub fn number_items(v: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) if !o.is_empty() => {
                for (k, x) in o {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            _ if prefix.is_empty() => out.push(short_value(v)),
            _ => out.push(format!("{prefix} = {}", short_value(v))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// `items` joined with `; ` into lines of at most `width` characters (an item
/// longer than that gets a line of its own, unbroken).
pub fn wrap_items(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.chars().count() + 2 + item.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_numbers_are_short_flat_and_wrapped() {
        assert_eq!(short_number(3.0), "3");
        assert_eq!(short_number(1.704_216_9), "1.704");
        assert_eq!(short_number(66.212_345), "66.21");
        assert_eq!(short_number(-0.147_892), "-0.1479");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(1.25e-5), "1.250e-5");
        assert_eq!(short_number(188_171.4), "188171");
        let v = serde_json::json!({
            "ratios": [1.701234, 1.38, 1.13, 0.92],
            "final": {"train_error": 0.0, "test_error": 66.2125},
            "branch": "main",
            "long": (0..10).collect::<Vec<i32>>(),
            "none": null,
        });
        let items = number_items(&v);
        assert_eq!(
            items,
            vec![
                "branch = main",
                "final.test_error = 66.21",
                "final.train_error = 0",
                "long = [0, 1, 2, 3, 4, 5, 6, 7, ... 2 more]",
                "none = -",
                "ratios = [1.701, 1.38, 1.13, 0.92]",
            ]
        );
        assert_eq!(number_items(&serde_json::json!(1.0)), vec!["1"]);
        assert_eq!(number_items(&serde_json::Value::Null), vec!["-"]);
        let lines = wrap_items(&items, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 44));
        assert_eq!(
            lines.join("; "),
            items.join("; "),
            "nothing lost in wrapping"
        );
        assert!(lines.len() >= 4);
    }

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
    fn euclidean_distance_is_the_length_of_the_difference() {
        let a = [1.0f32, 2.0, 3.0];
        let b = [2.0f32, 4.0, 6.0];
        // b - a = (1, 2, 3): sqrt(14), where 1 - cos is 0.
        assert!((euclidean_distance(&a, &b) - 14f64.sqrt()).abs() < 1e-12);
        assert!((Distance::Euclidean.of(&a, &b) - 14f64.sqrt()).abs() < 1e-12);
        assert!(Distance::Cosine.of(&a, &b).abs() < 1e-12);
        assert_eq!(euclidean_distance(&a, &a), 0.0);
        let d = [4.0f32, 6.0, 3.0];
        // (3, 4, 0): 5, symmetric.
        assert_eq!(euclidean_distance(&a, &d), 5.0);
        assert_eq!(euclidean_distance(&d, &a), 5.0);
        assert!((euclidean_norm(&a) - 14f64.sqrt()).abs() < 1e-12);
        assert_eq!(euclidean_norm(&[3.0, -4.0]), 5.0);
        assert_eq!(Distance::Euclidean.as_str(), "euclidean");
        assert_eq!(
            serde_json::to_string(&Distance::Cosine).unwrap_or_default(),
            "\"1 - cos\""
        );
    }

    #[test]
    fn max_excess_is_over_the_worse_parent_at_the_same_epoch() {
        use std::collections::BTreeMap;
        let a = BTreeMap::from([(0, 10.0), (1, 5.0), (2, 0.0)]);
        let b = BTreeMap::from([(1, 8.0), (2, 1.0), (3, 0.0)]);
        let mid = BTreeMap::from([(0, 99.0), (1, 9.0), (2, 20.0), (3, 50.0)]);
        // Epoch 0 and 3 lack a parent; at 1: 9 - 8 = 1; at 2: 20 - 1 = 19.
        let e = max_excess(&mid, &a, &b).unwrap();
        assert_eq!((e.max, e.epoch, e.value), (19.0, 2, 20.0));
        // At 1: 2 - 8 = -6; at 2: -3 - 1 = -4, the largest.
        let flat = BTreeMap::from([(1, 2.0), (2, -3.0)]);
        let e = max_excess(&flat, &a, &b).unwrap();
        assert_eq!(
            (e.max, e.epoch),
            (-4.0, 2),
            "a negative excess (below both parents) is reported as is"
        );
        assert!(max_excess(&BTreeMap::new(), &a, &b).is_none());
    }

    #[test]
    fn verdict_names() {
        assert_eq!(Verdict::from_bool(true).as_str(), "holds");
        assert_eq!(Verdict::from_bool(false).to_string(), "does not hold");
        assert_eq!(
            serde_json::to_string(&Verdict::DoesNotHold).unwrap_or_default(),
            "\"does not hold\""
        );
        assert_eq!(Verdict::Undecided.as_str(), "undecided");
        assert_eq!(
            serde_json::to_string(&Verdict::Undecided).unwrap_or_default(),
            "\"undecided\""
        );
    }
}
