//! `cargo xtask bench store`: write throughput of the trajectory store, and
//! the time to read layer 2 of 1,000 snapshots of the paper's network (page
//! cache warm) against raw reads and a file copy of the same bytes.
use anyhow::Result;

use crate::setup::TorchEnv;
use crate::util::{release_example, run_checked, say};

pub fn run(_env: &TorchEnv) -> Result<()> {
    say("bench store: landscape-trajectory example store_bench (release), 1,000 snapshots");
    run_checked(
        release_example("landscape-trajectory", "store_bench").args(["--snapshots", "1000"]),
    )
}
