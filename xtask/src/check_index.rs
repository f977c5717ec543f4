//! `cargo xtask check-index`: render `runs/index.html` in headless Chromium
//! and fail on a broken image, a missing figure, a blank SVG or a script
//! error.
//!
//! The page checks itself on `load` (see `landscape_figures::index`):
//! it writes its counts into `#self-check` with `data-status="ok"` or
//! `"fail"`. This task loads the page with `--dump-dom`, reads that element,
//! and also saves a full-page screenshot (`index.png` beside the page) and
//! checks it is a real PNG of the page.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::{self, SetupArgs};
use crate::util::{self, project_root};

#[derive(clap::Args)]
pub struct CheckIndexArgs {
    /// The page (made by `landscape index` or `reproduce all`).
    #[arg(long, default_value = "runs/index.html")]
    pub page: PathBuf,
    /// Where the screenshot goes (default: index.png beside the page).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
}

/// The `#self-check` element's status and text in a dumped DOM.
pub fn self_check(dom: &str) -> Option<(String, String)> {
    let at = dom.find("id=\"self-check\"")?;
    let open = dom[..at].rfind('<')?;
    let tag_end = open + dom[open..].find('>')?;
    let tag = &dom[open..tag_end];
    let s = tag.find("data-status=\"")? + "data-status=\"".len();
    let status = tag[s..].split('"').next()?.to_owned();
    let close = tag_end + 1 + dom[tag_end + 1..].find("</div>")?;
    Ok::<_, ()>((status, dom[tag_end + 1..close].to_owned())).ok()
}

fn browser_cmd(browser: &Path) -> Command {
    let mut c = Command::new(browser);
    // Root in a container needs --no-sandbox; the page is local and trusted.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        "--virtual-time-budget=20000",
    ]);
    c
}

pub fn run(args: &CheckIndexArgs) -> Result<()> {
    setup::run(&SetupArgs {
        browser: true,
        ..SetupArgs::default()
    })?;
    let browser = setup::find_browser().context("no browser after setup")?;
    let page = if args.page.is_absolute() {
        args.page.clone()
    } else {
        project_root().join(&args.page)
    };
    if !page.is_file() {
        bail!(
            "{} does not exist: make it with `landscape index` (or `cargo xtask reproduce all`)",
            page.display()
        );
    }
    let url = format!("file://{}", page.display());
    let out = browser_cmd(&browser)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .with_context(|| format!("running {}", browser.display()))?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let Some((status, text)) = self_check(&dom) else {
        bail!(
            "{} rendered no #self-check element (exit {}): {}",
            page.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    util::say(format!("self-check: {text}"));
    if status != "ok" {
        bail!("the page's self-check says `{status}`: {text}");
    }
    let shot = args
        .screenshot
        .clone()
        .unwrap_or_else(|| page.with_file_name("index.png"));
    let st = browser_cmd(&browser)
        .arg("--window-size=1400,3000")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .with_context(|| format!("running {}", browser.display()))?;
    let png = std::fs::read(&shot).with_context(|| {
        format!(
            "no screenshot at {} ({})",
            shot.display(),
            String::from_utf8_lossy(&st.stderr)
        )
    })?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") || png.len() < 10_000 {
        bail!(
            "{} is not a PNG of the page ({} bytes)",
            shot.display(),
            png.len()
        );
    }
    util::say(format!(
        "ok: {} renders in {} ({}); screenshot {} ({} KB)",
        page.display(),
        browser.display(),
        text,
        shot.display(),
        png.len() / 1024
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_self_check_element() {
        let dom = "<html><body><p>x</p><div id=\"self-check\" data-status=\"ok\">{\"figures\":3}</div></body></html>";
        assert_eq!(
            self_check(dom),
            Some(("ok".to_owned(), "{\"figures\":3}".to_owned()))
        );
        let dom = "<div data-status=\"fail\" id=\"self-check\">{}</div>";
        assert_eq!(self_check(dom).map(|x| x.0), Some("fail".to_owned()));
        assert_eq!(self_check("<div id=\"other\"></div>"), None);
    }
}
