//! Provenance: what produced a result, and refusing to mix results.
//!
//! A [`Fingerprint`] lists every input that determines the stored models:
//! the resolved configuration (minus the keys that only change the analysis,
//! such as thresholds and which layer is drawn), the data subsets (size, CRC32
//! of the original indices and of the labels, normalisation), the network's
//! size, the device kind and the code version that defines training. It is
//! written to `run.json` and, as a hash, into every snapshot. [`prepare_output`]
//! compares it with what an output folder already holds *before anything is
//! written*: a difference is refused with the keys that differ.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use landscape_trajectory::Store;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::data::ExperimentData;
use crate::identity::FINGERPRINT_KEY;
use crate::ExperimentError;

/// Bumped whenever a change to the engine changes the models it stores for
/// the same configuration (training, perturbation, evaluation semantics).
/// Part of every fingerprint, so old results are never resumed by new code
/// that would compute them differently.
pub const TRAINING_CODE_VERSION: u32 = 3;

/// The git revision this binary was built from (`-dirty` with uncommitted
/// changes; `unknown` when not built from a git checkout). Captured at build
/// time, so an installed binary reports its own revision.
pub const GIT_REVISION: &str = env!("LANDSCAPE_GIT_REVISION");

/// The version of the `tch` crate this binary was built with (`0.26.0`), as
/// `Cargo.lock` recorded it at build time (`unknown` without one).
pub const TCH_VERSION: &str = env!("LANDSCAPE_TCH_VERSION");

/// The series of a crate version: `0.26.0` -> `0.26` (major.minor).
fn tch_series(version: &str) -> String {
    version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// Versions of what produced a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// This workspace's version.
    pub landscape: String,
    /// libtorch, as found at build time.
    pub libtorch: String,
    /// The `tch` crate's series (`0.26`), as built (see [`TCH_VERSION`]).
    pub tch: String,
    /// See [`TRAINING_CODE_VERSION`].
    pub training_code: u32,
    /// See [`GIT_REVISION`].
    pub git_revision: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            landscape: env!("CARGO_PKG_VERSION").to_owned(),
            libtorch: landscape_net::LIBTORCH_VERSION.to_owned(),
            tch: tch_series(TCH_VERSION),
            training_code: TRAINING_CODE_VERSION,
            git_revision: GIT_REVISION.to_owned(),
        }
    }
}

/// Everything that determines an experiment's stored models, key by key,
/// and a hash of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Hex hash of `keys` (the first 16 hex digits of MD5 over `key=value` lines).
    pub hash: String,
    /// Flattened keys (`config.bgd.lr`, `data.train`, ...) and their JSON values.
    pub keys: BTreeMap<String, String>,
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_object()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v.to_string());
        }
    }
}

/// `variants[3].layer` -> `variants[*].layer`.
fn wildcard(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*");
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn is_analysis_only(key: &str, patterns: &[&str]) -> bool {
    let k = wildcard(key);
    patterns.iter().any(|p| {
        let p = format!("config.{p}");
        k == p || k.starts_with(&format!("{p}.")) || k.starts_with(&format!("{p}["))
    })
}

/// The fingerprint's device keys: `device` (`"cpu"` or `"cuda"`), and on
/// CUDA the GPU model, CUDA runtime, cuDNN and TF32 setting
/// ([`landscape_net::DeviceInfo::fingerprint_keys`]; none on the CPU).
pub fn device_keys(device: landscape_net::tch::Device) -> Vec<(String, String)> {
    let kind = if device.is_cuda() { "cuda" } else { "cpu" };
    let mut keys = vec![("device".to_owned(), format!("\"{kind}\""))];
    keys.extend(landscape_net::DeviceInfo::of(device).fingerprint_keys());
    keys
}

impl Fingerprint {
    /// The fingerprint of running `config` on `data` on `device`. Keys of the
    /// config matching `analysis_only` (paths like `thresholds` or
    /// `variants[*].layer`) are left out: changing them re-runs only the
    /// analysis.
    pub fn new<C: Serialize>(
        config: &C,
        analysis_only: &[&str],
        data: &ExperimentData,
        param_count: usize,
        device: landscape_net::tch::Device,
    ) -> Result<Self> {
        let mut all = BTreeMap::new();
        flatten("config", &serde_json::to_value(config)?, &mut all);
        let mut keys: BTreeMap<String, String> = all
            .into_iter()
            .filter(|(k, _)| !is_analysis_only(k, analysis_only))
            .collect();
        keys.insert("data.train".into(), serde_json::to_string(&data.train_id)?);
        keys.insert("data.test".into(), serde_json::to_string(&data.test_id)?);
        keys.insert(
            "data.normalization".into(),
            serde_json::to_string(&data.normalization)?,
        );
        keys.insert("net.parameters".into(), param_count.to_string());
        keys.extend(device_keys(device));
        let v = Versions::default();
        keys.insert("code.landscape".into(), format!("\"{}\"", v.landscape));
        keys.insert("code.training".into(), v.training_code.to_string());
        keys.insert("code.libtorch".into(), format!("\"{}\"", v.libtorch));
        Ok(Self::from_keys(keys))
    }

    /// A fingerprint of the given keys.
    pub fn from_keys(keys: BTreeMap<String, String>) -> Self {
        let mut h = Md5::new();
        for (k, v) in &keys {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        let hash = h
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Fingerprint { hash, keys }
    }

    /// One line per key whose value differs from `stored` (or exists in only one).
    pub fn differences(&self, stored: &BTreeMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.keys {
            match stored.get(k) {
                Some(s) if s == v => {}
                Some(s) => out.push(format!("{k}: stored {s}, now {v}")),
                None => out.push(format!("{k}: not in the stored fingerprint, now {v}")),
            }
        }
        for (k, s) in stored {
            if !self.keys.contains_key(k) {
                out.push(format!("{k}: stored {s}, not in this configuration"));
            }
        }
        out
    }
}

/// Readies `out` for a run with fingerprint `fp`. With `fresh`, deletes the
/// results a run writes there (`store/` and any `store-*/`, `run.json`,
/// `summary.json` and the folders named in `outputs`). Otherwise refuses, before writing anything,
/// an output folder whose `run.json` or stored snapshots were made under
/// another fingerprint ([`ExperimentError::FingerprintMismatch`]).
pub fn prepare_output(out: &Path, fp: &Fingerprint, fresh: bool, outputs: &[&str]) -> Result<()> {
    let run_json = out.join("run.json");
    // The experiment's stores: `store/` and any `store-<name>/` beside it.
    let stores: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n == "store" || n.starts_with("store-"))
                })
                .collect()
        })
        .unwrap_or_default();
    if fresh {
        for p in &stores {
            std::fs::remove_dir_all(p)
                .with_context(|| format!("starting over: cannot delete {}", p.display()))?;
        }
        for name in outputs {
            let p = out.join(name);
            if p.is_dir() {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("starting over: cannot delete {}", p.display()))?;
            }
        }
        for name in ["run.json", "summary.json", "report.json"] {
            let p = out.join(name);
            if p.is_file() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("starting over: cannot delete {}", p.display()))?;
            }
        }
        return Ok(());
    }
    let mismatch = |differences: Vec<String>| ExperimentError::FingerprintMismatch {
        out: out.to_path_buf(),
        differences,
    };
    if run_json.is_file() {
        let text = std::fs::read_to_string(&run_json)
            .with_context(|| format!("cannot read {}", run_json.display()))?;
        let old: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", run_json.display()))?;
        match old
            .get("fingerprint")
            .and_then(|f| serde_json::from_value::<Fingerprint>(f.clone()).ok())
        {
            Some(stored) => {
                let d = fp.differences(&stored.keys);
                if !d.is_empty() {
                    return Err(mismatch(d).into());
                }
            }
            None => {
                return Err(mismatch(vec![format!(
                    "{}: has no fingerprint (written by an older version of landscape)",
                    run_json.display()
                )])
                .into())
            }
        }
    }
    for store_dir in &stores {
        let store = Store::open(store_dir)
            .with_context(|| format!("cannot open the store in {}", store_dir.display()))?;
        let mut bad: BTreeMap<String, usize> = BTreeMap::new();
        for s in store.snapshots() {
            let h = s
                .meta()
                .extra()
                .get(FINGERPRINT_KEY)
                .cloned()
                .unwrap_or_else(|| "(none)".to_owned());
            if h != fp.hash {
                *bad.entry(h).or_insert(0) += 1;
            }
        }
        if !bad.is_empty() {
            let d = bad
                .into_iter()
                .map(|(h, n)| {
                    format!(
                        "{}: {n} snapshot(s) with fingerprint {h}, this configuration's is {}",
                        store_dir.display(),
                        fp.hash
                    )
                })
                .collect();
            return Err(mismatch(d).into());
        }
    }
    Ok(())
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

/// What this invocation did (as opposed to the run as a whole).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Invocation {
    /// The command line.
    pub command: Vec<String>,
    /// Snapshots trained, perturbed or averaged and written by this invocation
    /// (0 when everything was in the store and only the analysis ran).
    pub snapshots_written: usize,
    /// Seconds per phase of this invocation.
    pub timings_s: BTreeMap<String, f64>,
    /// How the C allocator was set up for this invocation
    /// ([`landscape_net::MallocSetup::summary`], e.g. `keep (M_MMAP_THRESHOLD=...
    /// ok, ...)` or `system`); `unset` when the program did not call
    /// [`landscape_net::configure_malloc`]. Does not change any result.
    #[serde(default)]
    pub allocator: String,
}

/// The content of `run.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// The experiment's name.
    pub experiment: String,
    /// The scale.
    pub scale: String,
    /// The experiment's seed.
    pub seed: u64,
    /// The resolved configuration.
    pub config: serde_json::Value,
    /// What determines the stored models.
    pub fingerprint: Fingerprint,
    /// Versions and git revision.
    pub versions: Versions,
    /// The device.
    pub device: String,
    /// The device in detail: on CUDA the GPU, driver, CUDA and cuDNN
    /// versions and the TF32 setting.
    pub device_info: landscape_net::DeviceInfo,
    /// libtorch CPU threads.
    pub threads: usize,
    /// Where the images came from.
    pub data_source: PathBuf,
    /// What was done to the training labels, if they were randomised.
    pub random_labels: Option<landscape_dataset::RandomLabels>,
    /// Seconds per phase, summed over invocations.
    pub timings_s: BTreeMap<String, f64>,
    /// Seconds in all, summed over invocations.
    pub total_s: f64,
    /// Whether this invocation continued an earlier, incomplete one.
    pub resumed: bool,
    /// `running` or `complete`.
    pub status: String,
    /// This invocation.
    pub last_invocation: Invocation,
}

/// Times phases and keeps `run.json` up to date.
pub struct RunLog {
    /// The record written to `run.json`.
    pub record: RunRecord,
    path: PathBuf,
    started: Instant,
    base_total: f64,
}

impl RunLog {
    /// Starts (or continues, adding to the earlier timings) the record in
    /// `out_dir/run.json`. Call after [`prepare_output`].
    pub fn start(out_dir: &Path, mut record: RunRecord) -> Result<Self> {
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("cannot create {}", out_dir.display()))?;
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
        let dt = t.elapsed().as_secs_f64();
        *self.record.timings_s.entry(name.to_owned()).or_insert(0.0) += dt;
        *self
            .record
            .last_invocation
            .timings_s
            .entry(name.to_owned())
            .or_insert(0.0) += dt;
        self.record.total_s = self.base_total + self.started.elapsed().as_secs_f64();
        self.save()?;
        out
    }

    /// Marks the run complete, noting how many snapshots this invocation wrote.
    pub fn finish(&mut self, snapshots_written: usize) -> Result<()> {
        self.record.status = "complete".to_owned();
        self.record.last_invocation.snapshots_written = snapshots_written;
        self.record.total_s = self.base_total + self.started.elapsed().as_secs_f64();
        self.save()
    }

    fn save(&self) -> Result<()> {
        write_json(&self.path, &self.record)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn analysis_only_keys_are_left_out_and_differences_are_named() {
        let cfg = serde_json::json!({
            "seed": 0,
            "bgd": {"lr": 0.5},
            "thresholds": {"wall": 10.0},
            "variants": [{"alpha": 0.25, "layer": 2}, {"alpha": 1.0, "layer": 3}],
            "branch_epochs": [0, 2],
        });
        let mut all = BTreeMap::new();
        flatten("config", &cfg, &mut all);
        let keep = |pats: &[&str]| -> BTreeMap<String, String> {
            all.iter()
                .filter(|(k, _)| !is_analysis_only(k, pats))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let k = keep(&["thresholds", "variants[*].layer"]);
        assert!(k.contains_key("config.variants[1].alpha"));
        assert!(k.contains_key("config.branch_epochs"));
        assert!(!k
            .keys()
            .any(|x| x.contains("thresholds") || x.ends_with(".layer")));
        let a = Fingerprint::from_keys(k.clone());
        let mut k2 = k.clone();
        k2.insert("config.seed".into(), "7".into());
        let b = Fingerprint::from_keys(k2);
        assert_ne!(a.hash, b.hash);
        let d = b.differences(&a.keys);
        assert_eq!(d, ["config.seed: stored 0, now 7"]);
        assert_eq!(
            Fingerprint::from_keys(k).hash,
            a.hash,
            "the hash is deterministic"
        );
    }

    #[test]
    fn a_folder_made_on_one_device_kind_is_refused_on_the_other() {
        let mut base = BTreeMap::new();
        base.insert("config.seed".to_owned(), "0".to_owned());
        let on = |device| {
            let mut k = base.clone();
            k.extend(device_keys(device));
            Fingerprint::from_keys(k)
        };
        let cpu = on(landscape_net::tch::Device::Cpu);
        let cuda = on(landscape_net::tch::Device::Cuda(0));
        // The CPU adds only `device`: CPU fingerprints are those of earlier versions.
        assert_eq!(
            cpu.keys.keys().filter(|k| k.starts_with("device")).count(),
            1
        );
        assert_eq!(cpu.keys["device"], "\"cpu\"");
        assert_eq!(cuda.keys["device"], "\"cuda\"");
        assert!(cuda.keys.contains_key("device.tf32"));
        assert_ne!(cpu.hash, cuda.hash);
        for (made, then) in [(&cpu, &cuda), (&cuda, &cpu)] {
            let dir = tempfile::tempdir().unwrap();
            let record = serde_json::json!({ "fingerprint": made });
            std::fs::write(dir.path().join("run.json"), record.to_string()).unwrap();
            prepare_output(dir.path(), made, false, &[]).unwrap();
            let err = prepare_output(dir.path(), then, false, &[]).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains(&format!(
                    "device: stored {}, now {}",
                    made.keys["device"], then.keys["device"]
                )),
                "{msg}"
            );
        }
    }

    #[test]
    fn wildcard_replaces_every_index() {
        assert_eq!(
            wildcard("config.variants[12].x[3]"),
            "config.variants[*].x[*]"
        );
    }

    #[test]
    fn the_tch_version_is_the_one_built_with() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        let at = lock.find("name = \"tch\"\nversion = \"").unwrap();
        let locked = lock[at..].lines().nth(1).unwrap();
        assert_eq!(locked, format!("version = \"{TCH_VERSION}\""));
        assert_eq!(tch_series("0.26.0"), "0.26");
        assert_eq!(Versions::default().tch, tch_series(TCH_VERSION));
        assert!(TCH_VERSION.starts_with(&Versions::default().tch));
    }
}
