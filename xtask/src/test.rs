//! `cargo xtask test`: setup, then the whole test suite.
use anyhow::Result;

use crate::{setup, util};

#[derive(clap::Args)]
pub struct TestArgs {
    /// Extra arguments passed to `cargo test` (after `--`, e.g. `-- --nocapture`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(args: &TestArgs) -> Result<()> {
    let env = setup::run(&setup::SetupArgs::default())?;
    let mut cmd = util::cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    cmd.args(&args.rest);
    env.apply(&mut cmd);
    util::run_checked(&mut cmd)
}
