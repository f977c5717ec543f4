//! Logging through `tracing-subscriber`: `RUST_LOG` wins; otherwise `-v`/`-q`.
//!
//! Colour (ANSI escape codes) only when stderr is a terminal and `NO_COLOR`
//! is unset or empty (<https://no-color.org>): logs redirected to a file or
//! piped into another program stay plain text.
use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = use_ansi(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Whether log lines may carry ANSI colour codes: only on a terminal, and
/// never when `NO_COLOR` is set to a non-empty value.
fn use_ansi(is_tty: bool, no_color: Option<&OsStr>) -> bool {
    is_tty && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(use_ansi(true, Some(OsStr::new(""))));
        assert!(!use_ansi(true, Some(OsStr::new("1"))));
        assert!(!use_ansi(true, Some(OsStr::new("0"))));
        assert!(!use_ansi(false, None));
        assert!(!use_ansi(false, Some(OsStr::new(""))));
        assert!(!use_ansi(false, Some(OsStr::new("1"))));
    }
}
