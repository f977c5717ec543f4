//! End-to-end test of `landscape reproduce all` and the index page: every
//! figure's smoke run, one page with each figure's SVG panels and verdicts,
//! and (where a headless Chromium is installed: `cargo xtask setup
//! --browser`, as `.ci/run` does) the page rendered in the browser, whose
//! self-check must say `ok`, and must say `fail` for a page with a script
//! error or a broken image.
//!
//! It runs the tool built with one more experiment, added through the
//! registry alone (`src/bin/landscape-throwaway.rs`), which must show up in
//! `reproduce --help`, `reproduce --list`, `reproduce all` and the page like
//! the paper's experiments; the experiments' names come from the registry,
//! not from a list here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

use landscape_tests::{cifar_fixture, json};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");
/// The same tool with a throwaway experiment added to the registry.
const THROWAWAY_BIN: &str = env!("CARGO_BIN_EXE_landscape-throwaway");

fn stdout_of(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// `text` with every run of white space one space (help text is wrapped).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_registry_is_the_list_everywhere() {
    let names: Vec<&str> = landscape_figures::EXPERIMENTS
        .iter()
        .map(|e| e.name())
        .collect();
    assert_eq!(names.len(), 9);
    let listed = stdout_of(BIN, &["reproduce", "--list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), names);
    let help = flat(&stdout_of(BIN, &["reproduce", "--help"]));
    for e in landscape_figures::EXPERIMENTS {
        let line = format!("{}: {}", e.name(), e.description());
        assert!(help.contains(&line), "{line} not in --help: {help}");
    }
    assert!(!help.contains("throwaway"));
    // One registry line adds an experiment to the tool's list and help.
    let listed = stdout_of(THROWAWAY_BIN, &["reproduce", "--list"]);
    let mut want = names.clone();
    want.push("throwaway");
    assert_eq!(listed.lines().collect::<Vec<_>>(), want);
    let help = flat(&stdout_of(THROWAWAY_BIN, &["reproduce", "--help"]));
    assert!(
        help.contains("throwaway: a test's own experiment, added through the registry alone"),
        "{help}"
    );
    let o = Command::new(BIN)
        .args(["reproduce", "throwaway"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the real tool does not know it");
}

fn browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("LANDSCAPE_BROWSER").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|b| d.join(b)))
        .find(|p| p.is_file())
}

/// The page's `#self-check` status after loading it in `browser`.
fn render_status(browser: &Path, page: &Path) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let at = dom
        .find("id=\"self-check\"")
        .expect("no #self-check in the rendered page");
    let tag = &dom[dom[..at].rfind('<').unwrap()..];
    let s = tag.find("data-status=\"").unwrap() + "data-status=\"".len();
    tag[s..].split('"').next().unwrap().to_owned()
}

#[test]
fn reproduce_all_writes_an_index_that_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let o = Command::new(THROWAWAY_BIN)
        .args([
            "reproduce",
            "all",
            "--scale",
            "smoke",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&runs)
        .arg("--data")
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The paper's experiments and the throwaway one, from the registry.
    let figures: Vec<&str> = landscape_figures::EXPERIMENTS
        .iter()
        .map(|e| e.name())
        .chain(["throwaway"])
        .collect();
    assert_eq!(figures.len(), 10);
    let page = runs.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for &f in &figures {
        assert!(stdout.contains(&format!("=== {f} ===")), "{f} did not run");
        assert!(
            html.contains(&format!("<li><a href=\"#{f}\">{f}</a>")),
            "{f} is not in the page's list"
        );
        let report = json(&runs.join(format!("{f}-smoke")).join("report.json"));
        assert_eq!(report["experiment"], f);
        // The figure's section, with every SVG its report names, inline.
        let start = html
            .find(&format!("<section class=\"figure\" id=\"{f}\">"))
            .unwrap_or_else(|| panic!("{f} has no section"));
        let end = start + html[start..].find("</section>").unwrap();
        let section = &html[start..end];
        let svgs = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x.as_str().unwrap().ends_with(".svg"))
            .count();
        assert!(svgs >= 1, "{f} drew no SVG");
        assert_eq!(section.matches("<figure data-file=").count(), svgs, "{f}");
        assert_eq!(section.matches("<svg").count(), svgs, "{f}");
        // Its verdicts are the report's.
        for s in report["sections"].as_array().unwrap() {
            for finding in s["findings"].as_array().unwrap() {
                let id = finding["id"].as_str().unwrap();
                assert!(
                    section.contains(&format!("<tr><td>{id}</td>")),
                    "{f}: {id} missing"
                );
            }
        }
    }
    assert!(html.contains(&format!("figs.length==={}", figures.len())));

    let Some(b) = browser() else {
        assert!(
            std::env::var_os("LANDSCAPE_REQUIRE_BROWSER").is_none(),
            "LANDSCAPE_REQUIRE_BROWSER is set but no browser was found"
        );
        eprintln!("skipping the browser check: no chromium on PATH (cargo xtask setup --browser installs it)");
        return;
    };
    assert_eq!(render_status(&b, &page), "ok");
    // The self-check catches what it is there for.
    let broken = runs.join("broken.html");
    std::fs::write(
        &broken,
        html.replacen("<h1>", "<img src=\"missing.png\"><h1>", 1),
    )
    .unwrap();
    assert_eq!(render_status(&b, &broken), "fail", "a broken image passed");
    std::fs::write(
        &broken,
        html.replacen("<h1>", "<script>no_such_function();</script><h1>", 1),
    )
    .unwrap();
    assert_eq!(render_status(&b, &broken), "fail", "a script error passed");
    // A figure whose pictures are gone must fail the check.
    let sec = html
        .find("<section class=\"figure\" id=\"fig41\">")
        .unwrap();
    let sec_end = sec + html[sec..].find("</section>").unwrap();
    let stripped: String = {
        let mut s = html[sec..sec_end].to_owned();
        while let Some(a) = s.find("<figure data-file=") {
            let z = a + s[a..].find("</figure>").unwrap() + "</figure>".len();
            s.replace_range(a..z, "");
        }
        format!("{}{}{}", &html[..sec], s, &html[sec_end..])
    };
    std::fs::write(&broken, stripped).unwrap();
    assert_eq!(
        render_status(&b, &broken),
        "fail",
        "a figure without a picture passed"
    );
}
