//! Experiments as data: one TOML file per experiment under `experiments/`,
//! made of one `[base]` table with the whole configuration and one
//! `[scale.<name>]` table per scale that overrides only what differs
//! (tables merge key by key, any other value, arrays included, is replaced).
//! Unknown keys are errors, and every scale is resolved and validated before
//! anything runs.
use std::path::Path;

use anyhow::{Context, Result};
use landscape_net::NetConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::eval::EvalConfig;
use crate::ExperimentError;

/// How much of the protocol to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Seconds: for tests.
    Smoke,
    /// Minutes on a 2-core CPU, on a CIFAR-10 subset.
    Quick,
    /// About an hour on a 2-core CPU (e.g. 5,000 images): how findings move as the data grows.
    Medium,
    /// The paper's protocol on all 50,000 images; meant for a GPU.
    Paper,
}

impl Scale {
    /// Every scale, smallest first.
    pub const ALL: [Scale; 4] = [Scale::Smoke, Scale::Quick, Scale::Medium, Scale::Paper];

    /// The lowercase name used in files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Medium => "medium",
            Scale::Paper => "paper",
        }
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scale {
    type Err = ExperimentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scale::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ExperimentError::Config {
                key: "scale".into(),
                reason: format!("`{s}` is not one of smoke, quick, medium, paper"),
            })
    }
}

/// Validation of one resolved configuration; errors name the key with the
/// scale as prefix (`quick.variants[1].alpha`).
pub trait Validate {
    /// Checks every value; `prefix` is the scale's name.
    fn validate(&self, prefix: &str) -> Result<(), ExperimentError>;
}

/// An experiment file: its name, a description and every scale, resolved.
#[derive(Debug)]
pub struct ExperimentFile<T> {
    /// The experiment's name, e.g. `fig14`.
    pub experiment: String,
    /// What it reproduces.
    pub description: String,
    scales: Vec<(Scale, T)>,
}

impl<T> ExperimentFile<T> {
    /// The resolved configuration of `scale`.
    pub fn scale(&self, scale: Scale) -> &T {
        // Every scale is resolved by `parse`, so the lookup cannot miss.
        let i = Scale::ALL.iter().position(|s| *s == scale).unwrap_or(0);
        &self.scales[i].1
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    experiment: String,
    description: String,
    base: toml::Table,
    #[serde(default)]
    scale: toml::Table,
}

/// `base` with `over` merged in: tables key by key, everything else replaced.
pub fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Parses an experiment file's text; `origin` names it in errors.
pub fn parse<T: DeserializeOwned + Validate>(
    text: &str,
    origin: &str,
) -> Result<ExperimentFile<T>> {
    let raw: RawFile =
        toml::from_str(text).with_context(|| format!("invalid experiment file {origin}"))?;
    for name in raw.scale.keys() {
        if name.parse::<Scale>().is_err() {
            anyhow::bail!(
                "invalid experiment file {origin}: `scale.{name}` is not a scale (smoke, quick, medium, paper)"
            );
        }
    }
    let mut scales = Vec::new();
    for scale in Scale::ALL {
        let mut table = raw.base.clone();
        match raw.scale.get(scale.as_str()) {
            Some(toml::Value::Table(over)) => merge(&mut table, over),
            Some(_) => {
                anyhow::bail!("invalid experiment file {origin}: `scale.{scale}` must be a table")
            }
            None => {}
        }
        let cfg: T = toml::Value::Table(table).try_into().with_context(|| {
            format!("invalid experiment file {origin}: in scale `{scale}` (base + [scale.{scale}])")
        })?;
        cfg.validate(scale.as_str())
            .with_context(|| format!("invalid experiment file {origin}"))?;
        scales.push((scale, cfg));
    }
    Ok(ExperimentFile {
        experiment: raw.experiment,
        description: raw.description,
        scales,
    })
}

/// Loads an experiment file from disk.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<ExperimentFile<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read experiment file {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// `Err` naming `key` unless `ok`.
pub fn ensure(ok: bool, key: &str, msg: impl std::fmt::Display) -> Result<(), ExperimentError> {
    if ok {
        Ok(())
    } else {
        Err(ExperimentError::Config {
            key: key.to_owned(),
            reason: msg.to_string(),
        })
    }
}

/// The checks every experiment's configuration starts with, keys under
/// `prefix` (the scale): its data, its network (`None` for an experiment
/// that builds its networks from other keys) and its evaluation settings.
pub fn validate_setup(
    prefix: &str,
    data: &DataConfig,
    net: Option<&NetConfig>,
    eval: &EvalConfig,
) -> Result<(), ExperimentError> {
    data.validate(prefix)?;
    if let Some(net) = net {
        net.validate().map_err(|e| ExperimentError::Config {
            key: format!("{prefix}.net"),
            reason: e.to_string(),
        })?;
    }
    eval.validate(prefix)
}

/// `Err` naming `{prefix}.{key}` for the first of `epochs` (key, count)
/// that is 0.
pub fn ensure_epochs(prefix: &str, epochs: &[(&str, u32)]) -> Result<(), ExperimentError> {
    for (key, n) in epochs {
        ensure(*n >= 1, &format!("{prefix}.{key}"), "must be at least 1")?;
    }
    Ok(())
}

/// `Err` naming `key` unless `v` is finite and within `lo..=hi`.
pub fn ensure_range(v: f64, lo: f64, hi: f64, key: &str) -> Result<(), ExperimentError> {
    ensure(
        v.is_finite() && v >= lo && v <= hi,
        key,
        format!("{v} must be a number in [{lo}, {hi}]"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u32,
        inner: Inner,
        list: Vec<u32>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        x: f64,
        y: f64,
    }
    impl Validate for T {
        fn validate(&self, p: &str) -> Result<(), ExperimentError> {
            ensure_range(self.inner.x, 0.0, 1.0, &format!("{p}.inner.x"))
        }
    }

    const FILE: &str = r#"
experiment = "t"
description = "d"
[base]
a = 1
list = [1, 2, 3]
[base.inner]
x = 0.5
y = 2.0
[scale.quick]
list = [9]
[scale.quick.inner]
x = 0.25
"#;

    #[test]
    fn scales_override_the_base_key_by_key() {
        let f = parse::<T>(FILE, "t").unwrap();
        let s = f.scale(Scale::Smoke);
        assert_eq!(
            (s.a, s.inner.x, s.inner.y, s.list.clone()),
            (1, 0.5, 2.0, vec![1, 2, 3])
        );
        let q = f.scale(Scale::Quick);
        assert_eq!(
            (q.a, q.inner.x, q.inner.y, q.list.clone()),
            (1, 0.25, 2.0, vec![9])
        );
    }

    #[test]
    fn unknown_keys_bad_scales_and_bad_values_are_named() {
        let e = format!(
            "{:#}",
            parse::<T>(&FILE.replace("x = 0.25", "x = 0.25\nz = 1"), "t").unwrap_err()
        );
        assert!(e.contains("`z`") && e.contains("quick"), "{e}");
        let e = format!(
            "{:#}",
            parse::<T>(&FILE.replace("[scale.quick]", "[scale.huge]"), "t").unwrap_err()
        );
        assert!(e.contains("scale.huge"), "{e}");
        let e = format!(
            "{:#}",
            parse::<T>(&FILE.replace("x = 0.25", "x = 7.0"), "t").unwrap_err()
        );
        assert!(e.contains("quick.inner.x"), "{e}");
        let e = format!(
            "{:#}",
            parse::<T>(&FILE.replace("x = 0.25", "x = nan"), "t").unwrap_err()
        );
        assert!(e.contains("quick.inner.x"), "{e}");
    }
}
