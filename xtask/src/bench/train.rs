//! `cargo xtask bench train` (being built: see its issue).
use anyhow::{bail, Result};

use crate::setup::TorchEnv;

pub fn run(_env: &TorchEnv) -> Result<()> {
    bail!("`cargo xtask bench train` is not built yet")
}
