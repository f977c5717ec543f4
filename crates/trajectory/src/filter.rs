//! Selecting snapshots by metadata.
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

use crate::error::StoreError;
use crate::meta::{SnapshotId, SnapshotInfo, SnapshotKind};

type Span<T> = (Bound<T>, Bound<T>);

fn span<T: Copy>(r: impl RangeBounds<T>) -> Span<T> {
    (r.start_bound().cloned(), r.end_bound().cloned())
}

/// Which snapshots to select. Every condition set must hold; an unset one
/// holds for all. A range condition (stage, epoch, step) never holds for a
/// snapshot that lacks the field.
///
/// ```
/// use landscape_trajectory::{Filter, SnapshotKind};
/// let f = Filter::all().run("main").kind(SnapshotKind::Trained).epochs(0..50);
/// let g: Filter = "run=main,kind=trained,epoch=0..50".parse().unwrap();
/// assert_eq!(f, g);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    runs: Vec<String>,
    kinds: Vec<SnapshotKind>,
    ids: Option<Span<u64>>,
    stages: Option<Span<u32>>,
    epochs: Option<Span<u32>>,
    steps: Option<Span<u64>>,
    parent: Option<SnapshotId>,
    has_metrics: Vec<String>,
    extra: Vec<(String, String)>,
}

impl Filter {
    /// The filter that selects every snapshot.
    pub fn all() -> Self {
        Filter::default()
    }
    /// Select run `run` (call again to allow several runs).
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.runs.push(run.into());
        self
    }
    /// Select kind `kind` (call again to allow several kinds).
    pub fn kind(mut self, kind: SnapshotKind) -> Self {
        self.kinds.push(kind);
        self
    }
    /// Select ids in a range.
    pub fn ids(mut self, r: impl RangeBounds<u64>) -> Self {
        self.ids = Some(span(r));
        self
    }
    /// Select stages in a range.
    pub fn stages(mut self, r: impl RangeBounds<u32>) -> Self {
        self.stages = Some(span(r));
        self
    }
    /// Select epochs in a range.
    pub fn epochs(mut self, r: impl RangeBounds<u32>) -> Self {
        self.epochs = Some(span(r));
        self
    }
    /// Select steps in a range.
    pub fn steps(mut self, r: impl RangeBounds<u64>) -> Self {
        self.steps = Some(span(r));
        self
    }
    /// Select the children of `parent`.
    pub fn parent(mut self, parent: SnapshotId) -> Self {
        self.parent = Some(parent);
        self
    }
    /// Select snapshots that have metric `name` (written or attached later).
    pub fn has_metric(mut self, name: impl Into<String>) -> Self {
        self.has_metrics.push(name.into());
        self
    }
    /// Select snapshots whose free-form metadata maps `key` to `value`.
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// Whether `info` is selected.
    pub fn matches(&self, info: &SnapshotInfo) -> bool {
        let m = info.meta();
        fn within<T: PartialOrd>(span: &Option<Span<T>>, v: Option<T>) -> bool {
            match (span, v) {
                (None, _) => true,
                (Some(s), Some(v)) => s.contains(&v),
                (Some(_), None) => false,
            }
        }
        (self.runs.is_empty() || self.runs.iter().any(|r| r == m.run()))
            && (self.kinds.is_empty() || self.kinds.contains(m.kind()))
            && within(&self.ids, Some(info.id().get()))
            && within(&self.stages, m.stage())
            && within(&self.epochs, m.epoch())
            && within(&self.steps, m.step())
            && self.parent.is_none_or(|p| m.parent() == Some(p))
            && self.has_metrics.iter().all(|k| m.metrics().contains_key(k))
            && self.extra.iter().all(|(k, v)| m.extra().get(k) == Some(v))
    }
}

fn parse_num<T: FromStr>(term: &str, s: &str) -> Result<T, StoreError> {
    s.trim().parse().map_err(|_| StoreError::Filter {
        input: term.to_string(),
        reason: format!("{s:?} is not a non-negative integer"),
    })
}

/// Parses `N`, `A..B` (B excluded), `A..=B`, `A..`, `..B`, `..=B`.
fn parse_span<T: FromStr + Copy>(term: &str, s: &str) -> Result<Span<T>, StoreError> {
    let s = s.trim();
    let Some((lo, hi)) = s.split_once("..") else {
        let v = parse_num(term, s)?;
        return Ok((Bound::Included(v), Bound::Included(v)));
    };
    let lo = if lo.trim().is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(parse_num(term, lo)?)
    };
    let hi = if let Some(h) = hi.strip_prefix('=') {
        Bound::Included(parse_num(term, h)?)
    } else if hi.trim().is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(parse_num(term, hi)?)
    };
    Ok((lo, hi))
}

impl FromStr for Filter {
    type Err = StoreError;

    /// Parses comma-separated `key=value` terms, all of which must hold:
    /// `run=main|branch1`, `kind=trained|perturbed`, `id=10..20`,
    /// `stage=1..=3`, `epoch=0..50` (Rust range syntax: `A..B` excludes B,
    /// `A..=B` includes it, either end may be left open; a single number
    /// selects that value), `step=..1000`, `parent=ID`, `has=test_error`
    /// (metric present), `extra.KEY=VALUE`. The empty string selects all.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = Filter::all();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let Some((key, value)) = term.split_once('=') else {
                return Err(StoreError::Filter {
                    input: term.into(),
                    reason: "expected key=value".into(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "run" => f.runs.extend(value.split('|').map(|r| r.trim().to_string())),
                "kind" => {
                    for k in value.split('|') {
                        let kind = k
                            .parse::<SnapshotKind>()
                            .map_err(|reason| StoreError::Filter { input: term.into(), reason })?;
                        f.kinds.push(kind);
                    }
                }
                "id" => f.ids = Some(parse_span(term, value)?),
                "stage" => f.stages = Some(parse_span(term, value)?),
                "epoch" => f.epochs = Some(parse_span(term, value)?),
                "step" => f.steps = Some(parse_span(term, value)?),
                "parent" => f.parent = Some(SnapshotId(parse_num(term, value)?)),
                "has" => f.has_metrics.push(value.to_string()),
                _ => match key.strip_prefix("extra.") {
                    Some(k) if !k.is_empty() => f.extra.push((k.to_string(), value.to_string())),
                    _ => {
                        return Err(StoreError::Filter {
                            input: term.into(),
                            reason: format!(
                                "unknown key {key:?}: expected run, kind, id, stage, epoch, step, parent, has or extra.KEY"
                            ),
                        })
                    }
                },
            }
        }
        Ok(f)
    }
}
