//! Where the data is looked for.
use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::layout::Layout;

/// The environment variable naming a CIFAR-10 folder.
pub const ENV_VAR: &str = "LANDSCAPE_CIFAR10";

/// Finds the CIFAR-10 folder: `explicit` (the CLI's `--data DIR`) if given,
/// else the environment variable `LANDSCAPE_CIFAR10` if set, else
/// `<workspace>/data/cifar-10-batches-bin` or `-py` (see [`workspace_root`]).
///
/// A given `--data` or `LANDSCAPE_CIFAR10` is the only place searched: a typo
/// there is reported rather than silently replaced by another copy. Each place
/// may name a layout folder itself or a folder holding one. The error lists
/// the places searched and says how to install the data.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os(ENV_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    locate_in(explicit, env.as_deref(), workspace_root().as_deref())
}

/// [`locate`] with the environment variable's value and the workspace given,
/// for callers (and tests) that do not want the process environment.
pub fn locate_in(
    explicit: Option<&Path>,
    env: Option<&Path>,
    workspace: Option<&Path>,
) -> Result<PathBuf> {
    let mut searched = Vec::new();
    let roots: Vec<PathBuf> = match (explicit, env) {
        (Some(dir), _) | (None, Some(dir)) => vec![dir.to_path_buf()],
        (None, None) => match workspace {
            Some(ws) => vec![ws.join("data")],
            None => Vec::new(),
        },
    };
    let from_workspace = explicit.is_none() && env.is_none();
    for root in roots {
        if !from_workspace {
            searched.push(root.clone());
            if Layout::detect(&root).is_some() {
                return Ok(root);
            }
        }
        for layout in Layout::ALL {
            let dir = root.join(layout.folder_name());
            if Layout::detect(&dir).is_some() {
                return Ok(dir);
            }
            searched.push(dir);
        }
    }
    if searched.is_empty() {
        searched.push(PathBuf::from(
            "data/cifar-10-batches-bin (no Cargo workspace found)",
        ));
    }
    Err(DatasetError::NotFound { searched })
}

/// The workspace root: the first folder, from the current directory upward,
/// whose `Cargo.toml` has a `[workspace]` table; else this crate's own
/// workspace (`CARGO_MANIFEST_DIR/../..`) when it still exists.
pub fn workspace_root() -> Option<PathBuf> {
    let is_ws = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
    };
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(dir) = cwd.ancestors().find(|d| is_ws(d)) {
            return Some(dir.to_path_buf());
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    is_ws(&built).then(|| built.canonicalize().unwrap_or(built))
}

/// Where `landscape data install` puts the data by default: `<workspace>/data`,
/// or `./data` outside a workspace.
pub fn default_data_dir() -> PathBuf {
    workspace_root().map_or_else(|| PathBuf::from("data"), |ws| ws.join("data"))
}
