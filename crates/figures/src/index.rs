//! `runs/index.html`: one page with every figure of a scale (its SVG panels,
//! inline so that the point tooltips work, its verdict tables, its config
//! and its run time), readable offline from the file system.
//!
//! The page checks itself when it loads: it counts the figure sections, the
//! drawn SVGs (each must have a non-empty bounding box), broken images and
//! script errors, and writes the result into `#self-check` (`data-status` =
//! `ok` or `fail`, and the counts as JSON). `cargo xtask check-index` loads
//! it in headless Chromium and reads that element.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Registry, REPORT_JSON};

/// What the index holds.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSummary {
    /// The page.
    pub page: PathBuf,
    /// Figures with a finished run, by name.
    pub present: Vec<String>,
    /// Figures not run yet at this scale.
    pub missing: Vec<String>,
    /// SVG panels embedded.
    pub svgs: usize,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// An SVG file's markup without its XML declaration, for inline use.
fn inline_svg(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let start = text
        .find("<svg")
        .with_context(|| format!("{} holds no <svg>", path.display()))?;
    Ok(text[start..].to_owned())
}

/// `path` relative to `base` when it lies under it (for captions and links).
fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1700px}\
section.figure{border-top:2px solid #444;margin-top:2em;padding-top:1em}\
section.missing{color:#777}table{border-collapse:collapse;margin:0.5em 0}\
td,th{border:1px solid #bbb;padding:3px 6px;vertical-align:top;font-size:13px}\
td.holds{background:#d9f2d9}td.fails{background:#f7d4d4}td.reported{background:#eee}td.undecided{background:#fbefc9}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption{font-size:12px;color:#555}code{font-size:12px;word-break:break-all}\
#self-check{font-family:monospace;font-size:12px;color:#555}";

/// The self-check run on `load` (see the module docs); `expected` is the
/// number of figures with a finished run.
fn self_check(expected: usize) -> String {
    format!(
        "<script>\n(function(){{\n\
window.addEventListener('load',function(){{\n\
var figs=document.querySelectorAll('section.figure:not(.missing)');\n\
var svgs=document.querySelectorAll('section.figure figure > svg');\n\
var blank=[];for(var i=0;i<svgs.length;i++){{var b=svgs[i].getBBox();if(!(b.width>0&&b.height>0))blank.push(svgs[i].parentNode.getAttribute('data-file'));}}\n\
var broken=[];for(var j=0;j<document.images.length;j++){{var im=document.images[j];if(!im.complete||im.naturalWidth===0)broken.push(im.getAttribute('src'));}}\n\
var bare=[];for(var k=0;k<figs.length;k++){{if(figs[k].querySelectorAll('figure > svg').length===0)bare.push(figs[k].id);}}\n\
var errs=window.__landscapeErrors||[];\n\
var ok=errs.length===0&&broken.length===0&&blank.length===0&&bare.length===0&&figs.length==={expected};\n\
var el=document.getElementById('self-check');\n\
el.setAttribute('data-status',ok?'ok':'fail');\n\
el.textContent=JSON.stringify({{status:ok?'ok':'fail',figures:figs.length,expected:{expected},svgs:svgs.length,blank_svgs:blank,broken_images:broken,figures_without_picture:bare,script_errors:errs}});\n\
}});\n}})();\n</script>\n"
    )
}

/// Writes `<runs>/index.html` for `scale` from the folders
/// `<runs>/<figure>-<scale>/` (their `report.json`, `run.json` and SVGs).
pub fn write_index(runs: &Path, scale: &str, registry: &Registry) -> Result<IndexSummary> {
    let mut body = String::new();
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut svgs = 0;
    let mut toc = String::new();
    for e in registry.experiments() {
        let (name, desc) = (e.name(), e.description());
        let dir = runs.join(format!("{name}-{scale}"));
        let report_path = dir.join(REPORT_JSON);
        let _ = writeln!(
            toc,
            "<li><a href=\"#{name}\">{name}</a>: {}</li>",
            esc(desc)
        );
        if !report_path.is_file() {
            let _ = writeln!(
                body,
                "<section class=\"figure missing\" id=\"{name}\"><h2>{name}</h2><p>{}</p>\
<p>Not run at scale {scale} yet: <code>cargo xtask reproduce {name} --scale {scale}</code></p></section>",
                esc(desc)
            );
            missing.push(name.to_owned());
            continue;
        }
        let report = read_json(&report_path)?;
        let run = read_json(&dir.join("run.json"))?;
        let total = run["total_s"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            body,
            "<section class=\"figure\" id=\"{name}\"><h2>{name}</h2><p>{}</p>",
            esc(desc)
        );
        let _ = writeln!(
            body,
            "<p>Scale <b>{}</b>, run time <b>{:.0} s</b> ({:.1} min, summed over invocations), status {}, \
git revision <code>{}</code>, {} thread(s), device {}. Folder: <code>{}</code></p>",
            esc(run["scale"].as_str().unwrap_or("?")),
            total,
            total / 60.0,
            esc(run["status"].as_str().unwrap_or("?")),
            esc(run["versions"]["git_revision"].as_str().unwrap_or("?")),
            run["threads"],
            esc(run["device"].as_str().unwrap_or("?")),
            esc(&relative(&dir, runs)),
        );
        if let Some(lines) = report["headline"].as_array() {
            let text: Vec<String> = lines.iter().filter_map(|l| l.as_str()).map(esc).collect();
            let _ = writeln!(body, "<pre>{}</pre>", text.join("\n"));
        }
        for section in report["sections"].as_array().into_iter().flatten() {
            let _ = writeln!(
                body,
                "<h3>{}</h3><table><tr><th>finding</th><th>verdict</th><th>claim</th><th>threshold</th><th>numbers</th></tr>",
                esc(section["title"].as_str().unwrap_or(""))
            );
            for f in section["findings"].as_array().into_iter().flatten() {
                let verdict = f["verdict"].as_str().unwrap_or("?");
                let class = match verdict {
                    "holds" => "holds",
                    "does not hold" => "fails",
                    "undecided" => "undecided",
                    _ => "reported",
                };
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    esc(f["id"].as_str().unwrap_or("")),
                    esc(verdict),
                    esc(f["claim"].as_str().unwrap_or("")),
                    esc(&f["threshold"].to_string()),
                    esc(&f["numbers"].to_string()),
                );
            }
            body.push_str("</table>\n");
        }
        for file in report["files"].as_array().into_iter().flatten() {
            let Some(f) = file.as_str() else { continue };
            let path = PathBuf::from(f);
            if path.extension().and_then(|e| e.to_str()) != Some("svg") {
                continue;
            }
            // Reports name files as the run wrote them (relative to where it
            // ran, or absolute): find them under the run's folder, by the
            // longest tail of the path found there (several subfolders may
            // hold a file of the same name).
            let path = if path.is_file() {
                path
            } else {
                let parts: Vec<_> = path.components().collect();
                (0..parts.len())
                    .map(|i| dir.join(parts[i..].iter().collect::<PathBuf>()))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| dir.join(path.file_name().unwrap_or_default()))
            };
            let found = if path.is_file() {
                Some(path.clone())
            } else {
                find_under(
                    &dir,
                    path.file_name().and_then(|n| n.to_str()).unwrap_or(""),
                )
            };
            let Some(found) = found else {
                anyhow::bail!(
                    "{name}: the report names {f}, which is not under {}",
                    dir.display()
                );
            };
            let rel = relative(&found, runs);
            let _ = writeln!(
                body,
                "<figure data-file=\"{}\">{}<figcaption>{} (<a href=\"{}\">open</a>)</figcaption></figure>",
                esc(&rel),
                inline_svg(&found)?,
                esc(&rel),
                esc(&rel)
            );
            svgs += 1;
        }
        let _ = writeln!(
            body,
            "<details><summary>configuration (resolved, from run.json)</summary><pre>{}</pre></details></section>",
            esc(&serde_json::to_string_pretty(&run["config"]).unwrap_or_default())
        );
        present.push(name.to_owned());
    }
    let page = runs.join("index.html");
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>landscape: the paper's figures ({scale})</title>\n\
<script>window.__landscapeErrors=[];window.addEventListener('error',function(e){{window.__landscapeErrors.push(String(e.message||e.type));}},true);</script>\n\
<style>{STYLE}</style></head><body>\n<h1>landscape: Liao &amp; Poggio, Theory of Deep Learning II, at scale {scale}</h1>\n\
<p>Every figure run at this scale, with its verdicts (thresholds from its config) and the numbers behind them. \
Hover over a point of an MDS picture for its run, epoch and errors. What each scale runs and how it deviates from the paper: docs/protocols.md.</p>\n\
<ul>{toc}</ul>\n{body}\n<div id=\"self-check\" data-status=\"pending\"></div>\n{}</body></html>\n",
        self_check(present.len())
    );
    landscape_engine::provenance::write_atomic(&page, html.as_bytes())?;
    Ok(IndexSummary {
        page,
        present,
        missing,
        svgs,
    })
}

fn find_under(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name()
                    .is_some_and(|n| n.to_str().is_some_and(|n| n.starts_with("store")))
                {
                    continue;
                }
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()) == Some(name) {
                return Some(p);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_page_from_one_run_and_the_rest_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fig14-smoke");
        std::fs::create_dir_all(dir.join("fig14")).unwrap();
        std::fs::write(
            dir.join("fig14").join("fig14.svg"),
            "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>",
        )
        .unwrap();
        let report = serde_json::json!({
            "experiment": "fig14",
            "headline": ["main: 0% <b>"],
            "sections": [{"title": "t", "findings": [{"id": "walls", "claim": "c", "verdict": "does not hold", "threshold": {"wall": 10.0}, "numbers": {"x": 1}}, {"id": "gap", "claim": "c", "verdict": "undecided", "threshold": null, "numbers": {}}]}],
            "files": ["runs/elsewhere/fig14/fig14.svg", "runs/x/fig14/fig14.png"],
        });
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
        let run = serde_json::json!({"scale": "smoke", "total_s": 12.5, "status": "complete", "versions": {"git_revision": "abc"}, "threads": 1, "device": "Cpu", "config": {"seed": 0}});
        std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
        let s = write_index(tmp.path(), "smoke", &Registry::paper()).unwrap();
        assert_eq!(s.present, ["fig14"]);
        assert_eq!(s.missing.len(), crate::EXPERIMENTS.len() - 1);
        assert_eq!(s.svgs, 1);
        let html = std::fs::read_to_string(&s.page).unwrap();
        assert!(html.contains("<svg xmlns"), "the SVG is inline");
        assert!(!html.contains("<?xml"), "without its XML declaration");
        assert!(html.contains("main: 0% &lt;b&gt;"), "text is escaped");
        assert!(html.contains("class=\"fails\">does not hold"));
        assert!(html.contains("class=\"undecided\">undecided"));
        assert!(html.contains("12 s"));
        assert!(
            html.contains("figs.length===1"),
            "the self-check expects one figure"
        );
        assert!(html.contains("cargo xtask reproduce fig3 --scale smoke"));
        // A report naming an SVG that is nowhere is an error, not a silent gap.
        std::fs::remove_file(dir.join("fig14").join("fig14.svg")).unwrap();
        let e = write_index(tmp.path(), "smoke", &Registry::paper()).unwrap_err();
        assert!(format!("{e:#}").contains("fig14.svg"), "{e:#}");
    }
}
