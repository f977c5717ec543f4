//! Resumable, shardable bookkeeping for evaluating a grid of points
//! (the evaluation itself happens elsewhere).
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::contour::Grid;
use crate::direction::DirectionParams;
use crate::error::{Result, SurfaceError};
use crate::line::LineSpec;
use crate::plane::{GridPoint, PlaneSpec};

/// The header file of a grid store.
pub const GRID_JSON: &str = "grid.json";
/// The point file of a grid store.
pub const POINTS_CSV: &str = "points.csv";

/// One of `n` parts of a grid, `k` counted from 1: the `--shard K/N`
/// argument.
///
/// Shard `k` gets a contiguous block of point indices: with `total` points,
/// `q = total / n` and `r = total % n`, the first `r` shards get `q + 1`
/// points and the others `q`, in index order (see [`Shard::range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    k: usize,
    n: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self::all()
    }
}

impl Shard {
    /// Shard `k` of `n` (1-based).
    pub fn new(k: usize, n: usize) -> Result<Self> {
        if n == 0 || k == 0 || k > n {
            return Err(SurfaceError::ShardParse {
                input: format!("{k}/{n}"),
                reason: "K and N must satisfy 1 <= K <= N".to_owned(),
            });
        }
        Ok(Self { k, n })
    }

    /// The whole grid, `1/1`.
    pub fn all() -> Self {
        Self { k: 1, n: 1 }
    }

    /// K (1-based).
    pub fn k(&self) -> usize {
        self.k
    }

    /// N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The indices of this shard out of `total` points.
    pub fn range(&self, total: usize) -> Range<usize> {
        let (q, r) = (total / self.n, total % self.n);
        let start = |k: usize| k * q + k.min(r);
        start(self.k - 1)..start(self.k)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = SurfaceError;

    fn from_str(s: &str) -> Result<Self> {
        let err = |reason: &str| SurfaceError::ShardParse {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(|| err("no `/`"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| err("K is not a whole number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if n == 0 {
            return Err(err("N must be at least 1"));
        }
        if k == 0 || k > n {
            return Err(err("K must be between 1 and N"));
        }
        Ok(Self { k, n })
    }
}

/// What is evaluated: points along a line (`x = t`, `y = 0`) or on a plane.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GridSpec {
    /// A line; point `i` is `t_i` ([`LineSpec::ts`]).
    Line(LineSpec),
    /// A plane; points row-major ([`PlaneSpec::points`]).
    Plane(PlaneSpec),
}

impl GridSpec {
    /// All points, in index order (validated).
    pub fn points(&self) -> Result<Vec<GridPoint>> {
        match self {
            Self::Line(l) => Ok(l
                .ts()?
                .into_iter()
                .enumerate()
                .map(|(index, t)| GridPoint {
                    index,
                    ix: index,
                    iy: 0,
                    x: t,
                    y: 0.0,
                })
                .collect()),
            Self::Plane(p) => p.points(),
        }
    }
}

/// The fingerprint of everything a grid's values depend on, supplied by
/// the caller. Two runs may share (or merge) a store only with equal keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridKey {
    /// The snapshots involved (ids or CRCs), e.g. the centre, or a, b, c.
    pub snapshots: Vec<String>,
    /// The random directions' parameters, if any.
    pub directions: Option<DirectionParams>,
    /// The BatchNorm policy, e.g. `"recompute:train:2000"`.
    pub bn_policy: String,
    /// The evaluation data's identity (dataset, split, subset, CRC).
    pub dataset: String,
    /// Anything else the values depend on (batch size, PCA settings, …).
    pub extra: BTreeMap<String, String>,
}

impl GridKey {
    /// A stable hash: CRC-32 (hex) of the key's JSON (fields in declaration
    /// order, `extra` sorted by name).
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{:08x}", crc32fast::hash(json.as_bytes()))
    }
}

/// What a grid store holds: written to `grid.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridHeader {
    /// [`GridKey::fingerprint`] of `key` (informative; checked on read).
    #[serde(default)]
    pub fingerprint: String,
    /// What the values depend on.
    pub key: GridKey,
    /// Which points.
    pub spec: GridSpec,
    /// Which part of them this folder holds.
    pub shard: Shard,
    /// Names of the value columns, e.g. `train_loss`, `train_error`.
    pub columns: Vec<String>,
}

impl GridHeader {
    /// A header (the fingerprint is filled in).
    pub fn new(key: GridKey, spec: GridSpec, shard: Shard, columns: &[&str]) -> Self {
        Self {
            fingerprint: key.fingerprint(),
            key,
            spec,
            shard,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(SurfaceError::invalid(
                "grid columns",
                "[]",
                "at least one value column",
            ));
        }
        for c in &self.columns {
            if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                return Err(SurfaceError::invalid(
                    "grid column name",
                    format!("`{c}`"),
                    "letters, digits and `_` only",
                ));
            }
            if ["index", "x", "y"].contains(&c.as_str()) {
                return Err(SurfaceError::invalid(
                    "grid column name",
                    format!("`{c}`"),
                    "not index, x or y",
                ));
            }
        }
        let mut seen = BTreeSet::new();
        if let Some(c) = self.columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(SurfaceError::invalid(
                "grid column name",
                format!("`{c}`"),
                "unique names",
            ));
        }
        Ok(())
    }

    fn csv_header(&self) -> String {
        let mut s = String::from("index,x,y");
        for c in &self.columns {
            s.push(',');
            s.push_str(c);
        }
        s.push('\n');
        s
    }

    fn to_json(&self) -> Result<String> {
        let mut h = self.clone();
        h.fingerprint = h.key.fingerprint();
        serde_json::to_string_pretty(&h)
            .map(|s| s + "\n")
            .map_err(|e| SurfaceError::Format {
                path: PathBuf::from(GRID_JSON),
                line: 0,
                message: e.to_string(),
            })
    }
}

/// One finished point.
#[derive(Clone, Debug, PartialEq)]
pub struct GridRow {
    /// The point's index.
    pub index: usize,
    /// Its x coordinate.
    pub x: f64,
    /// Its y coordinate.
    pub y: f64,
    /// One value per column.
    pub values: Vec<f64>,
}

impl GridRow {
    /// The CSV line: `{}` formatting (shortest round-trip) for every number.
    fn to_line(&self) -> String {
        let mut s = format!("{},{},{}", self.index, self.x, self.y);
        for v in &self.values {
            s.push(',');
            s.push_str(&v.to_string());
        }
        s.push('\n');
        s
    }
}

/// A grid store read back: header and finished rows, sorted by index.
#[derive(Clone, Debug, PartialEq)]
pub struct GridTable {
    header: GridHeader,
    rows: Vec<GridRow>,
}

impl GridTable {
    /// The header.
    pub fn header(&self) -> &GridHeader {
        &self.header
    }

    /// Finished rows, by index.
    pub fn rows(&self) -> &[GridRow] {
        &self.rows
    }

    /// Whether every point of the spec (not only of the shard) is present.
    pub fn is_complete(&self) -> Result<bool> {
        Ok(self.rows.len() == self.header.spec.points()?.len())
    }

    /// One column of a complete grid, in index order.
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self
            .header
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| {
                SurfaceError::invalid(
                    "grid column",
                    format!("`{name}`"),
                    format!("one of {:?}", self.header.columns),
                )
            })?;
        let total = self.header.spec.points()?.len();
        if self.rows.len() != total {
            return Err(SurfaceError::Merge {
                message: format!(
                    "the grid is incomplete: {} of {total} points",
                    self.rows.len()
                ),
            });
        }
        Ok(self.rows.iter().map(|r| r.values[c]).collect())
    }

    /// A complete plane grid's column as a contouring [`Grid`].
    pub fn to_grid(&self, name: &str) -> Result<Grid> {
        match &self.header.spec {
            GridSpec::Plane(p) => Grid::from_spec(p, self.column(name)?),
            GridSpec::Line(_) => Err(SurfaceError::invalid(
                "grid spec",
                "line",
                "a plane grid to contour",
            )),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SurfaceError + '_ {
    move |e| SurfaceError::io(path, e)
}

fn read_header(dir: &Path) -> Result<GridHeader> {
    let path = dir.join(GRID_JSON);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let header: GridHeader = serde_json::from_str(&text).map_err(|e| SurfaceError::Format {
        path: path.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    if header.fingerprint != header.key.fingerprint() {
        return Err(SurfaceError::Format {
            path,
            line: 0,
            message: format!(
                "fingerprint {} does not match its key (whose fingerprint is {})",
                header.fingerprint,
                header.key.fingerprint()
            ),
        });
    }
    Ok(header)
}

fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(contents).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))
}

/// Reads `points.csv`: the rows, and the byte length of the complete lines
/// (a last line without `\n` is a write cut short and is dropped).
fn read_rows(dir: &Path, header: &GridHeader, points: &[GridPoint]) -> Result<(Vec<GridRow>, u64)> {
    let path = dir.join(POINTS_CSV);
    let mut text = String::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_string(&mut text).map_err(io(&path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(SurfaceError::io(&path, e)),
    }
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let text = &text[..complete];
    let want = header.csv_header();
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    let range = header.shard.range(points.len());
    let bad = |line: usize, message: String| SurfaceError::Format {
        path: path.clone(),
        line,
        message,
    };
    for (ln, line) in text.split_inclusive('\n').enumerate() {
        if ln == 0 {
            if line != want {
                return Err(bad(
                    1,
                    format!(
                        "header `{}`, expected `{}`",
                        line.trim_end(),
                        want.trim_end()
                    ),
                ));
            }
            continue;
        }
        let fields: Vec<&str> = line.trim_end_matches('\n').split(',').collect();
        if fields.len() != 3 + header.columns.len() {
            return Err(bad(
                ln + 1,
                format!(
                    "{} fields, expected {}",
                    fields.len(),
                    3 + header.columns.len()
                ),
            ));
        }
        let index: usize = fields[0].parse().map_err(|_| {
            bad(
                ln + 1,
                format!("index `{}` is not a whole number", fields[0]),
            )
        })?;
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| bad(ln + 1, format!("`{s}` is not a number")))
        };
        let (x, y) = (num(fields[1])?, num(fields[2])?);
        let p = points.get(index).ok_or_else(|| {
            bad(
                ln + 1,
                format!(
                    "index {index} is outside the grid of {} points",
                    points.len()
                ),
            )
        })?;
        if !range.contains(&index) {
            return Err(bad(
                ln + 1,
                format!(
                    "index {index} is outside shard {} ({range:?})",
                    header.shard
                ),
            ));
        }
        if p.x != x || p.y != y {
            return Err(bad(
                ln + 1,
                format!(
                    "point {index} is at ({x}, {y}) but the spec puts it at ({}, {})",
                    p.x, p.y
                ),
            ));
        }
        if !seen.insert(index) {
            return Err(bad(ln + 1, format!("point {index} appears twice")));
        }
        let values = fields[3..]
            .iter()
            .map(|s| num(s))
            .collect::<Result<Vec<_>>>()?;
        rows.push(GridRow {
            index,
            x,
            y,
            values,
        });
    }
    if text.is_empty() {
        return Ok((rows, 0));
    }
    Ok((rows, complete as u64))
}

/// Reads a grid store (e.g. to plot it), dropping a truncated last line.
/// Rows come sorted by index.
pub fn read_grid(dir: impl AsRef<Path>) -> Result<GridTable> {
    let dir = dir.as_ref();
    let header = read_header(dir)?;
    header.validate()?;
    let points = header.spec.points()?;
    let (mut rows, _) = read_rows(dir, &header, &points)?;
    rows.sort_by_key(|r| r.index);
    Ok(GridTable { header, rows })
}

/// An open grid store folder: `grid.json` (the [`GridHeader`]) and
/// `points.csv` (header line `index,x,y,<columns>`, then one line per
/// finished point, appended and synced to disk point by point).
///
/// One writer at a time per folder; shards go to separate folders and are
/// combined by [`merge`].
#[derive(Debug)]
pub struct GridStore {
    dir: PathBuf,
    header: GridHeader,
    points: Vec<GridPoint>,
    done: BTreeSet<usize>,
    file: File,
}

fn first_difference(expected: &GridKey, found: &GridKey) -> (String, String, String) {
    let (a, b) = (
        serde_json::to_value(expected).unwrap_or_default(),
        serde_json::to_value(found).unwrap_or_default(),
    );
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, va) in a {
            let vb = b.get(k).cloned().unwrap_or_default();
            if *va != vb {
                return (k.clone(), va.to_string(), vb.to_string());
            }
        }
    }
    ("key".to_owned(), a.to_string(), b.to_string())
}

fn compare_headers(
    dir: &Path,
    expected: &GridHeader,
    found: &GridHeader,
    check_shard: bool,
) -> Result<()> {
    if expected.key != found.key {
        let (field, expected_value, found_value) = first_difference(&expected.key, &found.key);
        return Err(SurfaceError::KeyMismatch {
            path: dir.to_path_buf(),
            expected: expected.key.fingerprint(),
            found: found.key.fingerprint(),
            difference: format!("`{field}`: stored {found_value}, expected {expected_value}"),
        });
    }
    let mismatch = |what: &'static str, e: String, f: String| SurfaceError::StoreMismatch {
        path: dir.to_path_buf(),
        what,
        expected: e,
        found: f,
    };
    if expected.spec != found.spec {
        let j = |s: &GridSpec| serde_json::to_string(s).unwrap_or_default();
        return Err(mismatch("spec", j(&expected.spec), j(&found.spec)));
    }
    if expected.columns != found.columns {
        return Err(mismatch(
            "value columns",
            format!("{:?}", expected.columns),
            format!("{:?}", found.columns),
        ));
    }
    if check_shard && expected.shard != found.shard {
        return Err(mismatch(
            "shard",
            expected.shard.to_string(),
            found.shard.to_string(),
        ));
    }
    Ok(())
}

impl GridStore {
    /// Opens the store in `dir`, creating it (and the folder) if absent.
    ///
    /// An existing store must have the same key (else
    /// [`SurfaceError::KeyMismatch`], naming both fingerprints and the first
    /// differing field), spec, columns and shard. A last line cut short
    /// (no `\n`: the process was killed mid-write) is dropped and cut from
    /// the file, so that point is computed again.
    pub fn open(dir: impl AsRef<Path>, header: GridHeader) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        header.validate()?;
        let points = header.spec.points()?;
        let header = GridHeader {
            fingerprint: header.key.fingerprint(),
            ..header
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = dir.join(GRID_JSON);
        if json.exists() {
            let found = read_header(&dir)?;
            compare_headers(&dir, &header, &found, true)?;
        } else {
            write_atomic(&json, header.to_json()?.as_bytes())?;
        }
        let (rows, complete) = read_rows(&dir, &header, &points)?;
        let path = dir.join(POINTS_CSV);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        if len != complete {
            tracing::warn!(path = %path.display(), dropped = len - complete, "dropping a truncated last line");
            file.set_len(complete).map_err(io(&path))?;
        }
        if complete == 0 {
            file.write_all(header.csv_header().as_bytes())
                .map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
        }
        let done = rows.iter().map(|r| r.index).collect();
        Ok(Self {
            dir,
            header,
            points,
            done,
            file,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The header.
    pub fn header(&self) -> &GridHeader {
        &self.header
    }

    /// This shard's point indices.
    pub fn range(&self) -> Range<usize> {
        self.header.shard.range(self.points.len())
    }

    /// The point with that index (any shard's).
    pub fn point(&self, index: usize) -> Result<GridPoint> {
        self.points
            .get(index)
            .copied()
            .ok_or_else(|| SurfaceError::Point {
                index,
                message: format!("out of range: the grid has {} points", self.points.len()),
            })
    }

    /// This shard's indices still to compute, ascending.
    pub fn missing(&self) -> Vec<usize> {
        self.range().filter(|i| !self.done.contains(i)).collect()
    }

    /// Number of this shard's finished points.
    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Whether this shard is finished.
    pub fn is_complete(&self) -> bool {
        self.done.len() == self.range().len()
    }

    /// Appends the values of point `index` (one per column) and syncs the
    /// file. The point must belong to this shard and not be done yet.
    pub fn record(&mut self, index: usize, values: &[f64]) -> Result<()> {
        let p = self.point(index)?;
        let range = self.range();
        if !range.contains(&index) {
            return Err(SurfaceError::Point {
                index,
                message: format!("not in shard {} (indices {range:?})", self.header.shard),
            });
        }
        if self.done.contains(&index) {
            return Err(SurfaceError::Point {
                index,
                message: "already recorded".to_owned(),
            });
        }
        if values.len() != self.header.columns.len() {
            return Err(SurfaceError::Point {
                index,
                message: format!(
                    "{} values, expected one per column {:?}",
                    values.len(),
                    self.header.columns
                ),
            });
        }
        let line = GridRow {
            index,
            x: p.x,
            y: p.y,
            values: values.to_vec(),
        }
        .to_line();
        let path = self.dir.join(POINTS_CSV);
        self.file.write_all(line.as_bytes()).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))?;
        self.done.insert(index);
        Ok(())
    }

    /// Rewrites `points.csv` sorted by index (atomically), e.g. after
    /// out-of-order evaluation, so that it equals an in-order run's file.
    pub fn compact(&mut self) -> Result<()> {
        let table = read_grid(&self.dir)?;
        let path = self.dir.join(POINTS_CSV);
        write_atomic(&path, &csv_bytes(&self.header, table.rows()))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(())
    }
}

fn csv_bytes(header: &GridHeader, rows: &[GridRow]) -> Vec<u8> {
    let mut s = header.csv_header();
    for r in rows {
        s.push_str(&r.to_line());
    }
    s.into_bytes()
}

/// Merges shard folders into `out` (which must not hold a store yet).
///
/// Every shard must have the same key, spec and columns; the shards'
/// declared index blocks must be disjoint, no point may appear twice, and
/// together they must hold every point. `out` then gets shard `1/1` and all
/// rows sorted by index: byte for byte what one unsharded in-order run
/// writes.
pub fn merge(folders: &[impl AsRef<Path>], out: impl AsRef<Path>) -> Result<GridTable> {
    let out = out.as_ref();
    let Some(first) = folders.first() else {
        return Err(SurfaceError::Merge {
            message: "no shard folders given".to_owned(),
        });
    };
    let tables = folders
        .iter()
        .map(|f| read_grid(f.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let h0 = &tables[0].header;
    for (f, t) in folders.iter().zip(&tables).skip(1) {
        compare_headers(f.as_ref(), h0, &t.header, false)?;
    }
    let total = h0.spec.points()?.len();
    // Declared shard blocks must be disjoint.
    for i in 0..tables.len() {
        for j in i + 1..tables.len() {
            let (a, b) = (
                tables[i].header.shard.range(total),
                tables[j].header.shard.range(total),
            );
            if a.start < b.end && b.start < a.end {
                return Err(SurfaceError::Merge {
                    message: format!(
                        "shards {} ({}) and {} ({}) overlap at points {}..{}",
                        tables[i].header.shard,
                        folders[i].as_ref().display(),
                        tables[j].header.shard,
                        folders[j].as_ref().display(),
                        a.start.max(b.start),
                        a.end.min(b.end)
                    ),
                });
            }
        }
    }
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    let mut rows = Vec::with_capacity(total);
    for (fi, t) in tables.iter().enumerate() {
        for r in &t.rows {
            if let Some(prev) = owner.insert(r.index, fi) {
                return Err(SurfaceError::Merge {
                    message: format!(
                        "point {} is in both {} and {}",
                        r.index,
                        folders[prev].as_ref().display(),
                        folders[fi].as_ref().display()
                    ),
                });
            }
            rows.push(r.clone());
        }
    }
    if rows.len() != total {
        let missing: Vec<usize> = (0..total).filter(|i| !owner.contains_key(i)).collect();
        return Err(SurfaceError::Merge {
            message: format!(
                "incomplete: {} of {total} points missing (first: {:?}); shards given: {}",
                missing.len(),
                &missing[..missing.len().min(10)],
                tables
                    .iter()
                    .map(|t| t.header.shard.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    rows.sort_by_key(|r| r.index);
    if out.join(GRID_JSON).exists() {
        return Err(SurfaceError::Merge {
            message: format!(
                "{} already holds a grid store; not overwriting",
                out.display()
            ),
        });
    }
    fs::create_dir_all(out).map_err(io(out))?;
    let header = GridHeader {
        shard: Shard::all(),
        ..h0.clone()
    };
    write_atomic(&out.join(POINTS_CSV), &csv_bytes(&header, &rows))?;
    write_atomic(&out.join(GRID_JSON), header.to_json()?.as_bytes())?;
    tracing::info!(shards = tables.len(), points = total, from = %first.as_ref().display(), out = %out.display(), "merged grid shards");
    Ok(GridTable { header, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::Axis;
    use proptest::prelude::*;

    fn header(shard: Shard) -> GridHeader {
        let key = GridKey {
            snapshots: vec!["run1/epoch100:1a2b3c4d".into()],
            directions: Some(DirectionParams::new(42)),
            bn_policy: "keep".into(),
            dataset: "cifar10:train:crc=deadbeef".into(),
            extra: BTreeMap::new(),
        };
        let spec = GridSpec::Plane(PlaneSpec::new(
            Axis::new(-1.0, 1.0, 7),
            Axis::new(-0.5, 0.5, 5),
        ));
        GridHeader::new(
            key,
            spec,
            shard,
            &["train_loss", "train_error", "test_loss", "test_error"],
        )
    }

    fn values(p: &GridPoint) -> Vec<f64> {
        let l = p.x * p.x + 2.0 * p.y * p.y + 0.1;
        vec![l, l / 3.0, l * 1.1, 1.0 / 7.0 + p.x]
    }

    fn run(dir: &Path, shard: Shard) -> GridStore {
        let mut s = GridStore::open(dir, header(shard)).unwrap();
        for i in s.missing() {
            let p = s.point(i).unwrap();
            s.record(i, &values(&p)).unwrap();
        }
        assert!(s.is_complete());
        s
    }

    #[test]
    fn shard_parsing_and_blocks() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.k(), s.n()), (2, 3));
        assert_eq!(s.to_string(), "2/3");
        assert_eq!(Shard::new(1, 3).unwrap().range(10), 0..4);
        assert_eq!(s.range(10), 4..7);
        assert_eq!(Shard::new(3, 3).unwrap().range(10), 7..10);
        assert_eq!(Shard::new(5, 5).unwrap().range(3), 3..3);
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("--shard") && e.contains("K/N"), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn shard_blocks_partition_the_grid(total in 0usize..500, n in 1usize..20) {
            let mut next = 0;
            for k in 1..=n {
                let r = Shard::new(k, n).unwrap().range(total);
                prop_assert_eq!(r.start, next);
                prop_assert!(r.len() == total / n || r.len() == total / n + 1);
                next = r.end;
            }
            prop_assert_eq!(next, total);
        }
    }

    #[test]
    fn three_shards_merge_to_the_unsharded_grid_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = tmp.path().join("whole");
        run(&whole, Shard::all());
        let parts: Vec<PathBuf> = (1..=3).map(|k| tmp.path().join(format!("s{k}"))).collect();
        // Shards finished in any order.
        for k in [2, 3, 1] {
            run(&parts[k - 1], Shard::new(k, 3).unwrap());
        }
        let out = tmp.path().join("merged");
        let table = merge(&parts, &out).unwrap();
        assert_eq!(table.rows().len(), 35);
        for f in [POINTS_CSV, GRID_JSON] {
            assert_eq!(
                fs::read(whole.join(f)).unwrap(),
                fs::read(out.join(f)).unwrap(),
                "{f}"
            );
        }
        // Values survive the text round trip exactly.
        let t = read_grid(&out).unwrap();
        for r in t.rows() {
            let p = GridStore::open(&whole, header(Shard::all()))
                .unwrap()
                .point(r.index)
                .unwrap();
            assert_eq!(r.values, values(&p));
        }
        let g = t.to_grid("train_loss").unwrap();
        assert_eq!(g.values().len(), 35);
        assert!((g.bilinear(0.0, 0.0).unwrap() - 0.1).abs() < 1e-12);
        // Merging again into the same folder is refused.
        assert!(merge(&parts, &out)
            .unwrap_err()
            .to_string()
            .contains("already"));
    }

    #[test]
    fn truncated_last_line_is_dropped_and_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = tmp.path().join("whole");
        run(&whole, Shard::all());
        let cut = tmp.path().join("cut");
        {
            let mut s = GridStore::open(&cut, header(Shard::all())).unwrap();
            for i in 0..17 {
                let p = s.point(i).unwrap();
                s.record(i, &values(&p)).unwrap();
            }
        }
        // Killed in the middle of writing point 17.
        let mut f = OpenOptions::new()
            .append(true)
            .open(cut.join(POINTS_CSV))
            .unwrap();
        f.write_all(b"17,-0.333333").unwrap();
        drop(f);
        let s = GridStore::open(&cut, header(Shard::all())).unwrap();
        assert_eq!(s.done_count(), 17);
        assert_eq!(s.missing(), (17..35).collect::<Vec<_>>());
        drop(s);
        run(&cut, Shard::all());
        assert_eq!(
            fs::read(whole.join(POINTS_CSV)).unwrap(),
            fs::read(cut.join(POINTS_CSV)).unwrap()
        );
        // A header cut short is rewritten too.
        let fresh = tmp.path().join("fresh");
        fs::create_dir_all(&fresh).unwrap();
        fs::write(fresh.join(POINTS_CSV), b"index,x,y,tr").unwrap();
        run(&fresh, Shard::all());
        assert_eq!(
            fs::read(whole.join(POINTS_CSV)).unwrap(),
            fs::read(fresh.join(POINTS_CSV)).unwrap()
        );
    }

    #[test]
    fn out_of_order_then_compact_equals_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = tmp.path().join("whole");
        run(&whole, Shard::all());
        let shuffled = tmp.path().join("shuffled");
        let mut s = GridStore::open(&shuffled, header(Shard::all())).unwrap();
        for i in (0..35).rev() {
            let p = s.point(i).unwrap();
            s.record(i, &values(&p)).unwrap();
        }
        assert_ne!(
            fs::read(whole.join(POINTS_CSV)).unwrap(),
            fs::read(shuffled.join(POINTS_CSV)).unwrap()
        );
        s.compact().unwrap();
        assert_eq!(
            fs::read(whole.join(POINTS_CSV)).unwrap(),
            fs::read(shuffled.join(POINTS_CSV)).unwrap()
        );
    }

    #[test]
    fn mismatched_keys_refuse_to_open_and_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        run(&a, Shard::new(1, 2).unwrap());
        let mut other = header(Shard::new(1, 2).unwrap());
        other.key.bn_policy = "recompute".into();
        let e = GridStore::open(&a, other.clone()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("bn_policy")
                && msg.contains(&other.key.fingerprint())
                && msg.contains(&header(Shard::all()).key.fingerprint()),
            "{msg}"
        );
        let b = tmp.path().join("b");
        other.shard = Shard::new(2, 2).unwrap();
        let mut s = GridStore::open(&b, other).unwrap();
        for i in s.missing() {
            let p = s.point(i).unwrap();
            s.record(i, &values(&p)).unwrap();
        }
        let e = merge(&[&a, &b], tmp.path().join("m")).unwrap_err();
        assert!(matches!(e, SurfaceError::KeyMismatch { .. }), "{e}");
        assert!(e.to_string().contains("bn_policy"), "{e}");
        // Other mismatches when opening.
        let mut h = header(Shard::new(2, 2).unwrap());
        assert!(GridStore::open(&a, h.clone())
            .unwrap_err()
            .to_string()
            .contains("shard"));
        h.shard = Shard::new(1, 2).unwrap();
        h.columns.pop();
        assert!(GridStore::open(&a, h)
            .unwrap_err()
            .to_string()
            .contains("value columns"));
    }

    #[test]
    fn overlapping_or_incomplete_shards_refuse() {
        let tmp = tempfile::tempdir().unwrap();
        let d = |s: &str| tmp.path().join(s);
        run(&d("a1"), Shard::new(1, 2).unwrap());
        run(&d("a2"), Shard::new(2, 2).unwrap());
        run(&d("b1"), Shard::new(1, 3).unwrap());
        run(&d("whole"), Shard::all());
        let e = merge(&[d("a1"), d("b1"), d("a2")], d("m"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("overlap") && e.contains("1/2") && e.contains("1/3"),
            "{e}"
        );
        let e = merge(&[d("whole"), d("a1")], d("m"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlap"), "{e}");
        let e = merge(&[d("a1")], d("m")).unwrap_err().to_string();
        assert!(e.contains("incomplete") && e.contains("17 of 35"), "{e}");
        // A shard that stopped early.
        let mut s = GridStore::open(d("c2"), header(Shard::new(2, 2).unwrap())).unwrap();
        s.record(20, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let e = merge(&[d("a1"), d("c2")], d("m")).unwrap_err().to_string();
        assert!(e.contains("incomplete") && e.contains("[18, 19, 21"), "{e}");
        assert!(!d("m").exists());
        assert!(merge(&[d("a1"), d("a2")], d("m")).is_ok());
    }

    #[test]
    fn record_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = GridStore::open(tmp.path(), header(Shard::new(2, 3).unwrap())).unwrap();
        assert_eq!(s.range(), 12..24);
        assert!(s
            .record(0, &[0.0; 4])
            .unwrap_err()
            .to_string()
            .contains("not in shard 2/3"));
        assert!(s.record(12, &[0.0; 3]).is_err());
        s.record(12, &[0.0, 1.0, f64::NAN, f64::INFINITY]).unwrap();
        assert!(s
            .record(12, &[0.0; 4])
            .unwrap_err()
            .to_string()
            .contains("already"));
        drop(s);
        let t = read_grid(tmp.path()).unwrap();
        assert!(t.rows()[0].values[2].is_nan());
        assert_eq!(t.rows()[0].values[3], f64::INFINITY);
        assert!(!t.is_complete().unwrap());
        assert!(t.column("train_loss").is_err());
        // A corrupted complete line is an error naming the line.
        fs::write(
            tmp.path().join(POINTS_CSV),
            "index,x,y,train_loss,train_error,test_loss,test_error\n12,0,0,1,2\n",
        )
        .unwrap();
        let e = read_grid(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("points.csv:2") && e.contains("5 fields"), "{e}");
        let bad = GridHeader::new(
            GridKey::default(),
            GridSpec::Line(LineSpec::between()),
            Shard::all(),
            &["x"],
        );
        assert!(GridStore::open(tmp.path().join("z"), bad).is_err());
    }

    #[test]
    fn axis_bounds_with_17_digits_survive_grid_json() {
        // Such bounds come from `ThroughPlane::suggest_spec`; serde_json
        // without `float_roundtrip` parses x.max (17 digits) back 1 ulp off.
        let tmp = tempfile::tempdir().unwrap();
        let mut h = header(Shard::all());
        h.spec = GridSpec::Plane(PlaneSpec::new(
            Axis::new(-0.3460942546777197, 1.7304712733885985, 9),
            Axis::new(-0.25901730513882765, 1.2950865224377337, 3),
        ));
        let mut s = GridStore::open(tmp.path(), h.clone()).unwrap();
        s.record(1, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        drop(s);
        let t = read_grid(tmp.path()).unwrap();
        assert_eq!(t.header().spec, h.spec);
        assert_eq!(t.rows().len(), 1);
        assert_eq!(GridStore::open(tmp.path(), h).unwrap().done_count(), 1);
    }

    #[test]
    fn line_specs_and_fingerprints() {
        let spec = GridSpec::Line(LineSpec::between());
        let pts = spec.points().unwrap();
        assert_eq!(pts.len(), 41);
        assert_eq!((pts[10].x, pts[30].x, pts[30].y), (0.0, 1.0, 0.0));
        let k = header(Shard::all()).key;
        assert_eq!(k.fingerprint(), k.clone().fingerprint());
        assert_eq!(k.fingerprint().len(), 8);
        let mut k2 = k.clone();
        k2.extra.insert("batch".into(), "1000".into());
        assert_ne!(k.fingerprint(), k2.fingerprint());
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.starts_with("{\"line\""), "{json}");
        let back: GridSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }
}
