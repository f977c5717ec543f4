//! `cargo xtask setup`: libtorch and LAPACK, once per machine.
//!
//! * libtorch comes from PyPI's `torch==2.13.0` wheel (what `tch` 0.26
//!   expects), installed with `pip install --target` into a per-user cache,
//!   `$XDG_CACHE_HOME/landscape/torch-2.13.0-cpXY` (default `~/.cache`), shared
//!   by every clone. The workspace gets a `.libtorch` link to `torch/` inside
//!   it, which `.cargo/config.toml` hands to `tch` as `LIBTORCH`; the net and
//!   CLI build scripts bake the library folder into the rpath. A `LIBTORCH`
//!   set in the environment is honoured instead (and only checked).
//! * LAPACK for `ndarray-linalg` is Debian's `libopenblas-dev`.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, project_root};

/// The PyTorch version `tch` 0.26 is built against.
pub const TORCH_VERSION: &str = "2.13.0";
const MARKER: &str = "landscape-setup.txt";

#[derive(clap::Args, Default)]
pub struct SetupArgs {
    /// Print what is checked even when nothing needs doing.
    #[arg(short, long)]
    pub verbose: bool,
    /// Also install a headless browser (Debian's `chromium`) for
    /// `cargo xtask check-index`, if none is found. Only then.
    #[arg(long)]
    pub browser: bool,
}

/// What setup found: where libtorch and its Python package live.
pub struct TorchEnv {
    /// Folder to put on `PYTHONPATH` to import the same torch from Python
    /// (absent when the user brought their own `LIBTORCH`).
    pub python_site: Option<PathBuf>,
    /// The libtorch folder (holds `lib/` and `include/`).
    pub libtorch: PathBuf,
}

impl std::fmt::Display for TorchEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libtorch {TORCH_VERSION} at {}", self.libtorch.display())
    }
}

impl TorchEnv {
    /// Exports what child processes (tests, benchmarks) need to find torch.
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(site) = &self.python_site {
            cmd.env("LANDSCAPE_TORCH_PYTHONPATH", site);
        }
    }
}

pub fn run(args: &SetupArgs) -> Result<TorchEnv> {
    lapack(args)?;
    if args.browser {
        browser(args)?;
    }
    let env = libtorch(args)?;
    verbose(args, format!("ready: {env}"));
    Ok(env)
}

fn verbose(args: &SetupArgs, msg: impl AsRef<str>) {
    if args.verbose {
        util::say(msg);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Debian's libopenblas-dev provides `libopenblas.so` (BLAS + LAPACK).
fn lapack(args: &SetupArgs) -> Result<()> {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/libopenblas.so",
        "/usr/lib/aarch64-linux-gnu/libopenblas.so",
        "/usr/lib64/libopenblas.so",
        "/usr/lib/libopenblas.so",
        "/usr/local/lib/libopenblas.so",
    ];
    if candidates.iter().any(|p| Path::new(p).exists()) {
        verbose(args, "LAPACK: libopenblas found");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "LAPACK (OpenBLAS) is missing. Install it once with:\n    sudo apt-get install -y libopenblas-dev\nthen run `cargo xtask setup` again."
        );
    }
    apt_install("libopenblas-dev", "LAPACK for ndarray-linalg").context(
        "Install OpenBLAS (with LAPACK) with your package manager and run `cargo xtask setup` again",
    )
}

/// The headless browsers `check-index` can drive, in order of preference.
pub const BROWSERS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The first browser of [`BROWSERS`] on `PATH` (or `$LANDSCAPE_BROWSER`).
pub fn find_browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("LANDSCAPE_BROWSER").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| BROWSERS.iter().map(move |b| d.join(b)))
        .find(|p| p.is_file())
}

/// Debian's `chromium`, for `cargo xtask check-index`, when no browser is found.
fn browser(args: &SetupArgs) -> Result<()> {
    if let Some(b) = find_browser() {
        verbose(args, format!("browser: {}", b.display()));
        return Ok(());
    }
    if !is_root() {
        bail!(
            "no headless browser found (looked for {}). Install one once with:\n    sudo apt-get install -y chromium\nor set LANDSCAPE_BROWSER to its path.",
            BROWSERS.join(", ")
        );
    }
    apt_install("chromium", "a headless browser for cargo xtask check-index")
        .context("or set LANDSCAPE_BROWSER to a Chromium or Chrome binary")
}

/// `apt-get install` of one Debian package (with one `apt-get update` retry).
fn apt_install(package: &str, why: &str) -> Result<()> {
    util::say(format!("installing {package} with apt-get ({why})"));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let ok = install().map(|s| s.success()).unwrap_or(false);
    if !ok {
        let updated = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !updated || !install().map(|s| s.success()).unwrap_or(false) {
            bail!("could not install {package} with apt-get (no network, or not a Debian/Ubuntu system?)");
        }
    }
    Ok(())
}

fn cache_home() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x));
    }
    let home = std::env::var_os("HOME").context(
        "neither XDG_CACHE_HOME nor HOME is set: cannot choose a cache folder for libtorch",
    )?;
    Ok(PathBuf::from(home).join(".cache"))
}

/// `cp311` for the machine's `python3`.
fn python_tag() -> Result<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        _ => bail!(
            "python3 was not found (or does not run). libtorch is installed from PyPI's torch=={TORCH_VERSION} wheel with pip:\n\
             install Python 3 with pip (e.g. `apt-get install python3 python3-pip`), or point LIBTORCH at an existing libtorch {TORCH_VERSION}."
        ),
    }
}

/// Reads `torch/version.py` of an installed torch package.
fn torch_version(torch_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_owned())
}

fn check_libtorch_dir(dir: &Path, origin: &str) -> Result<()> {
    let lib = dir.join("lib").join("libtorch_cpu.so");
    let include = dir.join("include").join("torch");
    if !lib.exists() || !include.exists() {
        bail!(
            "{origin} = {} is not a libtorch folder: expected {} and {}",
            dir.display(),
            lib.display(),
            include.display()
        );
    }
    let version = torch_version(dir).or_else(|| {
        std::fs::read_to_string(dir.join("build-version"))
            .ok()
            .map(|s| s.trim().to_owned())
    });
    if let Some(v) = version {
        let base = v.split('+').next().unwrap_or(&v);
        if base != TORCH_VERSION {
            bail!(
                "{origin} = {} holds torch {v}, but tch 0.26 needs {TORCH_VERSION}.\n\
                 Unset {origin} to let `cargo xtask setup` install torch=={TORCH_VERSION} into its cache, or point it at a {TORCH_VERSION} install.",
                dir.display()
            );
        }
    }
    Ok(())
}

fn libtorch(args: &SetupArgs) -> Result<TorchEnv> {
    // `.cargo/config.toml` sets LIBTORCH to the workspace link for every cargo
    // child (this process included): only a different value is the user's own.
    let workspace_link = project_root().join(".libtorch");
    let user = std::env::var_os("LIBTORCH")
        .filter(|v| !v.is_empty())
        .filter(|v| Path::new(v) != workspace_link);
    if let Some(user) = user {
        let dir = PathBuf::from(user);
        check_libtorch_dir(&dir, "LIBTORCH")?;
        verbose(args, format!("libtorch: using LIBTORCH={}", dir.display()));
        return Ok(TorchEnv {
            python_site: None,
            libtorch: dir,
        });
    }
    let tag = python_tag()?;
    let root = cache_home()?.join("landscape");
    let site = root.join(format!("torch-{TORCH_VERSION}-{tag}"));
    let torch_dir = site.join("torch");
    if site.join(MARKER).exists() {
        verbose(args, format!("libtorch: cached at {}", site.display()));
    } else {
        install_torch(&root, &site, &tag)?;
    }
    check_libtorch_dir(&torch_dir, "the libtorch cache")?;
    link_workspace(&torch_dir)?;
    Ok(TorchEnv {
        python_site: Some(site),
        libtorch: torch_dir,
    })
}

fn install_torch(root: &Path, site: &Path, tag: &str) -> Result<()> {
    let pip_ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !pip_ok {
        bail!(
            "pip is missing for python3. Install it (e.g. `apt-get install python3-pip` or `python3 -m ensurepip`) and run `cargo xtask setup` again."
        );
    }
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create the cache folder {}", root.display()))?;
    let partial = site.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| {
            format!("cannot remove the unfinished install {}", partial.display())
        })?;
    }
    util::say(format!(
        "installing PyPI torch=={TORCH_VERSION} ({tag}) once for this machine into {} (a few GB; later runs reuse it)",
        site.display()
    ));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "-q",
            "--target",
        ])
        .arg(&partial)
        .arg(format!("torch=={TORCH_VERSION}"))
        .arg("numpy")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
        .context("could not run python3 -m pip")?;
    if !status.success() {
        bail!(
            "pip could not install torch=={TORCH_VERSION} (see pip's message above).\n\
             No network? Install it where you have one and set LIBTORCH to its `torch` folder,\n\
             or copy {} from another machine.",
            site.display()
        );
    }
    let version = torch_version(&partial.join("torch")).unwrap_or_default();
    if version.split('+').next() != Some(TORCH_VERSION) {
        bail!("pip installed torch '{version}', expected {TORCH_VERSION}; refusing to use it");
    }
    std::fs::write(partial.join(MARKER), format!("torch=={version}\n"))?;
    if site.exists() {
        std::fs::remove_dir_all(site)?;
    }
    std::fs::rename(&partial, site)
        .with_context(|| format!("cannot move {} to {}", partial.display(), site.display()))?;
    util::say(format!("libtorch {version} ready"));
    Ok(())
}

/// Points `<workspace>/.libtorch` at the cached libtorch (replacing a stale link).
fn link_workspace(torch_dir: &Path) -> Result<()> {
    let link = project_root().join(".libtorch");
    if let Ok(current) = std::fs::read_link(&link) {
        if current == torch_dir {
            return Ok(());
        }
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)
            .with_context(|| format!("cannot replace {} (remove it by hand)", link.display()))?;
    }
    std::os::unix::fs::symlink(torch_dir, &link)
        .with_context(|| format!("cannot create the link {}", link.display()))?;
    Ok(())
}
