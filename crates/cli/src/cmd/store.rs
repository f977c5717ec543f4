//! `landscape store` (being built: see its issue).
use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct StoreArgs {}

pub fn run(_args: StoreArgs) -> Result<()> {
    bail!("`landscape store` is not built yet")
}
