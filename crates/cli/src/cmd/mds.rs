//! `landscape mds` (being built: see its issue).
use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct MdsArgs {}

pub fn run(_args: MdsArgs) -> Result<()> {
    bail!("`landscape mds` is not built yet")
}
