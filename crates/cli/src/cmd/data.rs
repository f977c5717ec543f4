//! `landscape data` (being built: see its issue).
use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct DataArgs {}

pub fn run(_args: DataArgs) -> Result<()> {
    bail!("`landscape data` is not built yet")
}
