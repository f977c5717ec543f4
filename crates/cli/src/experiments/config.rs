//! Experiments as data: one TOML file per figure under `experiments/`, with a
//! table per scale (`smoke`, `quick`, `paper`). Unknown keys are errors, and
//! every scale is validated before any training starts.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How much of the protocol to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Seconds: for tests.
    Smoke,
    /// Minutes on a 2-core CPU, on a CIFAR-10 subset; shows the same phenomena.
    Quick,
    /// Exactly the paper's protocol (50,000 images); meant for a GPU.
    Paper,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Paper => "paper",
        }
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An experiment file: a description and one complete configuration per scale.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile<T> {
    /// The experiment's name, e.g. `fig14`.
    pub experiment: String,
    /// One paragraph on what it reproduces.
    pub description: String,
    pub smoke: T,
    pub quick: T,
    pub paper: T,
}

impl<T> ExperimentFile<T> {
    pub fn scale(&self, scale: Scale) -> &T {
        match scale {
            Scale::Smoke => &self.smoke,
            Scale::Quick => &self.quick,
            Scale::Paper => &self.paper,
        }
    }
}

/// Validation of one scale's configuration; errors name the key (`quick.alpha`).
pub trait Validate {
    fn validate(&self, prefix: &str) -> Result<()>;
}

/// The folder holding the bundled experiment files (`<workspace>/experiments`).
pub fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// Parses an experiment file's text; `origin` names it in errors.
pub fn parse<T: DeserializeOwned + Validate>(
    text: &str,
    origin: &str,
) -> Result<ExperimentFile<T>> {
    let file: ExperimentFile<T> =
        toml::from_str(text).with_context(|| format!("invalid experiment file {origin}"))?;
    for scale in [Scale::Smoke, Scale::Quick, Scale::Paper] {
        file.scale(scale)
            .validate(scale.as_str())
            .with_context(|| format!("invalid experiment file {origin}"))?;
    }
    Ok(file)
}

/// Loads an experiment file from disk.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<ExperimentFile<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read experiment file {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// `Err` naming `key` unless `ok`.
pub fn ensure(ok: bool, key: &str, msg: impl std::fmt::Display) -> Result<()> {
    if ok {
        Ok(())
    } else {
        anyhow::bail!("`{key}`: {msg}")
    }
}
