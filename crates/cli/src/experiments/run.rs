//! A run's output folder and its provenance record, `run.json`: the resolved
//! configuration, seed, git revision, versions, device and per-phase timings.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

/// Versions of what produced a result.
#[derive(Clone, Debug, Serialize)]
pub struct Versions {
    pub landscape: String,
    pub libtorch: String,
    pub tch: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            landscape: env!("CARGO_PKG_VERSION").to_owned(),
            libtorch: "2.13.0".to_owned(),
            tch: "0.26".to_owned(),
        }
    }
}

/// The content of `run.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub experiment: String,
    pub scale: String,
    pub seed: u64,
    pub config: serde_json::Value,
    pub git_revision: Option<String>,
    pub versions: Versions,
    pub device: String,
    pub threads: usize,
    pub command: Vec<String>,
    /// Seconds per phase, in the order they ran (a resumed run adds to them).
    pub timings_s: BTreeMap<String, f64>,
    pub total_s: f64,
    pub resumed: bool,
    pub status: String,
}

/// The git revision of the workspace this binary was built from, with `-dirty`
/// when it has uncommitted changes; `None` outside a git checkout.
pub fn git_revision() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder,
/// fsync, rename): a crash leaves the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Times phases and keeps `run.json` up to date.
pub struct RunLog {
    pub record: RunRecord,
    path: PathBuf,
    started: Instant,
    base_total: f64,
}

impl RunLog {
    /// Starts (or resumes, adding to the earlier timings) the record in `out_dir/run.json`.
    pub fn start(out_dir: &Path, mut record: RunRecord) -> Result<Self> {
        let path = out_dir.join("run.json");
        let mut base_total = 0.0;
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(old) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Some(t) = old.get("timings_s").and_then(|t| t.as_object()) {
                    for (k, v) in t {
                        if let Some(v) = v.as_f64() {
                            record.timings_s.insert(k.clone(), v);
                        }
                    }
                }
                base_total = old.get("total_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
                record.resumed = old.get("status").and_then(|s| s.as_str()) != Some("complete");
            }
        }
        record.status = "running".to_owned();
        let log = RunLog {
            record,
            path,
            started: Instant::now(),
            base_total,
        };
        log.save()?;
        Ok(log)
    }

    /// Runs `f` as the phase `name`, adding its wall time to `run.json`.
    pub fn phase<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        tracing::info!(phase = name, "start");
        let out = f();
        *self.record.timings_s.entry(name.to_owned()).or_insert(0.0) += t.elapsed().as_secs_f64();
        self.record.total_s = self.base_total + self.started.elapsed().as_secs_f64();
        self.save()?;
        out
    }

    /// Marks the run complete.
    pub fn finish(&mut self) -> Result<()> {
        self.record.status = "complete".to_owned();
        self.record.total_s = self.base_total + self.started.elapsed().as_secs_f64();
        self.save()
    }

    fn save(&self) -> Result<()> {
        write_json(&self.path, &self.record)
    }
}
