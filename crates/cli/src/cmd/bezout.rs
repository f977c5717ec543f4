//! `landscape bezout` (being built: see its issue).
use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct BezoutArgs {}

pub fn run(_args: BezoutArgs) -> Result<()> {
    bail!("`landscape bezout` is not built yet")
}
