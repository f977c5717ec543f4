//! `cargo xtask bench mds` (being built: see its issue).
use anyhow::{bail, Result};

use crate::setup::TorchEnv;

pub fn run(_env: &TorchEnv) -> Result<()> {
    bail!("`cargo xtask bench mds` is not built yet")
}
