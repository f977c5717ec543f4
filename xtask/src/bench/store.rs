//! `cargo xtask bench store` (being built: see its issue).
use anyhow::{bail, Result};

use crate::setup::TorchEnv;

pub fn run(_env: &TorchEnv) -> Result<()> {
    bail!("`cargo xtask bench store` is not built yet")
}
