//! Figures in the paper's style, written as PNG and SVG with plotters.
//!
//! Three shapes cover the experiments: scatter panels whose points are drawn
//! as text labels (the paper draws each model as its training error or its
//! epoch), line panels for error and loss curves, and heat maps (loss
//! surfaces). In the SVG, every scatter point that has a tooltip carries it as
//! an SVG `<title>` (shown on hover: run, epoch, errors). Text uses an
//! embedded DejaVu Sans font, so no system fonts are needed.
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One point of a scatter, drawn as its label.
#[derive(Clone, Debug)]
pub struct LabeledPoint {
    pub x: f64,
    pub y: f64,
    pub label: String,
    /// Shown on hover in the SVG (e.g. run, epoch, training and test error).
    pub tooltip: Option<String>,
}

/// A set of points of one colour (a trajectory), optionally joined by a line.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<LabeledPoint>,
    /// Join consecutive points with a thin line (trajectories).
    pub connect: bool,
}

/// One panel of scatter groups.
#[derive(Clone, Debug)]
pub struct ScatterPanel {
    pub title: String,
    pub groups: Vec<Group>,
}

/// One curve of a line panel.
#[derive(Clone, Debug)]
pub struct Curve {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// One panel of curves.
#[derive(Clone, Debug)]
pub struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
}

/// The colours of trajectories: main, then branches, then averaged models.
pub fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(0, 0, 0),
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(188, 189, 34),
    ];
    COLORS[i % COLORS.len()]
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // A failure here only means text falls back to plotters' own error at draw time.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// Writes `<stem>.png` and `<stem>.svg` (atomically: temporary file, then rename).
fn write_both(
    stem: &Path,
    size: (u32, u32),
    draw_png: impl Fn(DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
    draw_svg: impl Fn(DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
    post_svg: &dyn Fn(String) -> String,
) -> Result<Vec<PathBuf>> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let png_tmp = stem.with_extension("png.tmp.png");
    let svg_tmp = stem.with_extension("svg.tmp.svg");
    {
        let root = BitMapBackend::new(&png_tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_png(root.clone())?;
        root.present()
            .map_err(err)
            .with_context(|| format!("writing {}", png_tmp.display()))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_svg(root.clone())?;
        root.present()
            .map_err(err)
            .with_context(|| format!("writing {}", svg_tmp.display()))?;
    }
    let text = std::fs::read_to_string(&svg_tmp)
        .with_context(|| format!("reading {}", svg_tmp.display()))?;
    std::fs::write(&svg_tmp, post_svg(text))
        .with_context(|| format!("writing {}", svg_tmp.display()))?;
    std::fs::rename(&png_tmp, &png).with_context(|| format!("writing {}", png.display()))?;
    std::fs::rename(&svg_tmp, &svg).with_context(|| format!("writing {}", svg.display()))?;
    Ok(vec![png, svg])
}

fn bounds<I: Iterator<Item = (f64, f64)>>(it: I) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in it.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return ((-1.0, 1.0), (-1.0, 1.0));
    }
    let pad = |a: f64, b: f64| {
        let w = (b - a).abs().max(1e-12);
        (a - 0.06 * w, b + 0.06 * w)
    };
    (pad(x0, x1), pad(y0, y1))
}

/// A panel's chart: caption, margins, light mesh and axis names.
fn panel_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    ranges: ((f64, f64), (f64, f64)),
    label_areas: (u32, u32),
    descs: (&str, &str),
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let ((x0, x1), (y0, y1)) = ranges;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(label_areas.0)
        .y_label_area_size(label_areas.1)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc(descs.0)
        .y_desc(descs.1)
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The series legend in the upper right corner.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    font_size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The figure title (if any) and one area per panel, `cols` to a row.
fn panel_areas<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: usize,
    cols: usize,
) -> Result<Vec<DrawingArea<DB, Shift>>> {
    let root = if title.is_empty() {
        root
    } else {
        root.titled(title, ("sans-serif", 22)).map_err(err)?
    };
    let cols = cols.max(1);
    let rows = panels.div_ceil(cols).max(1);
    Ok(root.split_evenly((rows, cols)))
}

/// Tooltips collected while drawing: backend pixel position and text.
type Tips = RefCell<Vec<(i32, i32, String)>>;

fn draw_scatter_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &ScatterPanel,
    ranges: ((f64, f64), (f64, f64)),
    label_size: u32,
    tips: &Tips,
) -> Result<()> {
    let mut chart = panel_chart(area, &panel.title, ranges, (28, 44), ("MDS 1", "MDS 2"))?;
    // Groups sharing a name (one run drawn in several pieces) share one legend entry.
    let mut named = std::collections::HashSet::new();
    for g in &panel.groups {
        for p in &g.points {
            if let Some(t) = &p.tooltip {
                let (x, y) = chart.backend_coord(&(p.x, p.y));
                tips.borrow_mut().push((x, y, format!("{}: {t}", g.name)));
            }
        }
        let color = g.color;
        if g.connect && g.points.len() > 1 {
            chart
                .draw_series(LineSeries::new(
                    g.points.iter().map(|p| (p.x, p.y)),
                    color.mix(0.35).stroke_width(1),
                ))
                .map_err(err)?;
        }
        let font = ("sans-serif", label_size).into_font().color(&color);
        let anno = chart
            .draw_series(g.points.iter().map(|p| {
                Text::new(
                    p.label.clone(),
                    (p.x, p.y),
                    font.clone().pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    )),
                )
            }))
            .map_err(err)?;
        if named.insert(g.name.as_str()) {
            anno.label(g.name.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
            });
        }
    }
    draw_legend(&mut chart, 13)
}

fn draw_scatter_all<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[ScatterPanel],
    cols: usize,
    shared_axes: bool,
    label_size: u32,
    tips: &Tips,
) -> Result<()> {
    let areas = panel_areas(root, title, panels.len(), cols)?;
    let all = bounds(panels.iter().flat_map(|p| {
        p.groups
            .iter()
            .flat_map(|g| g.points.iter().map(|q| (q.x, q.y)))
    }));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let ranges = if shared_axes {
            all
        } else {
            bounds(
                panel
                    .groups
                    .iter()
                    .flat_map(|g| g.points.iter().map(|q| (q.x, q.y))),
            )
        };
        draw_scatter_panel(area, panel, ranges, label_size, tips)?;
    }
    Ok(())
}

/// Scatter panels (points drawn as labels), written as `<stem>.png` and `<stem>.svg`.
pub fn scatter_panels(
    stem: &Path,
    title: &str,
    panels: &[ScatterPanel],
    cols: usize,
    size: (u32, u32),
    shared_axes: bool,
    label_size: u32,
) -> Result<Vec<PathBuf>> {
    let ignored = Tips::default();
    let tips = Tips::default();
    write_both(
        stem,
        size,
        |root| draw_scatter_all(root, title, panels, cols, shared_axes, label_size, &ignored),
        |root| draw_scatter_all(root, title, panels, cols, shared_axes, label_size, &tips),
        &|svg: String| add_tooltips(svg, &tips.borrow()),
    )
}

/// XML text escaping.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds one invisible circle with a `<title>` per tooltip, over the drawing.
fn add_tooltips(svg: String, tips: &[(i32, i32, String)]) -> String {
    if tips.is_empty() {
        return svg;
    }
    let mut layer = String::from("<g class=\"tooltips\" fill=\"#000\" fill-opacity=\"0\">\n");
    for (x, y, t) in tips {
        layer.push_str(&format!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"7\"><title>{}</title></circle>\n",
            xml_escape(t)
        ));
    }
    layer.push_str("</g>\n");
    match svg.rfind("</svg>") {
        Some(i) => format!("{}{layer}{}", &svg[..i], &svg[i..]),
        None => svg,
    }
}

/// A labelled vertical line across every panel of a line figure (e.g. the
/// endpoints `t = 0` and `t = 1` of a line between two snapshots).
#[derive(Clone, Debug)]
pub struct VerticalMark {
    pub x: f64,
    pub label: String,
}

fn draw_line_all<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[LinePanel],
    cols: usize,
    marks: &[VerticalMark],
    dots: bool,
) -> Result<()> {
    let areas = panel_areas(root, title, panels.len(), cols)?;
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let (xs, (y0, y1)) = bounds(panel.curves.iter().flat_map(|c| c.points.iter().copied()));
        let mut chart = panel_chart(
            area,
            &panel.title,
            (xs, (y0.min(0.0), y1)),
            (32, 50),
            (panel.x_label.as_str(), panel.y_label.as_str()),
        )?;
        for m in marks.iter().filter(|m| m.x.is_finite()) {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(m.x, y0.min(0.0)), (m.x, y1)],
                    grey.stroke_width(1),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    m.label.clone(),
                    (m.x, y1),
                    ("sans-serif", 12).into_font().color(&grey),
                )))
                .map_err(err)?;
        }
        // Curves sharing a name (one run drawn in several pieces) share one legend entry.
        let mut named = std::collections::HashSet::new();
        for c in &panel.curves {
            let color = c.color;
            // A one-point curve has no line to show: it is always a dot.
            if dots || c.points.len() == 1 {
                chart
                    .draw_series(c.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(err)?;
            }
            let anno = chart
                .draw_series(LineSeries::new(
                    c.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            if named.insert(c.name.as_str()) {
                anno.label(c.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
        draw_legend(&mut chart, 12)?;
    }
    Ok(())
}

/// Line panels (curves with a legend), written as `<stem>.png` and `<stem>.svg`.
pub fn line_panels(
    stem: &Path,
    title: &str,
    panels: &[LinePanel],
    cols: usize,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    line_panels_marked(stem, title, panels, &[], cols, size)
}

/// [`line_panels`] with labelled vertical lines across every panel.
pub fn line_panels_marked(
    stem: &Path,
    title: &str,
    panels: &[LinePanel],
    marks: &[VerticalMark],
    cols: usize,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    write_both(
        stem,
        size,
        |root| draw_line_all(root, title, panels, cols, marks, false),
        |root| draw_line_all(root, title, panels, cols, marks, false),
        &|svg| svg,
    )
}

/// [`line_panels`] with a dot at every point (sparse samples of a curve).
pub fn line_panels_dotted(
    stem: &Path,
    title: &str,
    panels: &[LinePanel],
    cols: usize,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    write_both(
        stem,
        size,
        |root| draw_line_all(root, title, panels, cols, &[], true),
        |root| draw_line_all(root, title, panels, cols, &[], true),
        &|svg| svg,
    )
}

/// A heat map of values on a grid (e.g. the loss on a plane of weights):
/// `values[i][j]` is the value at `(xs[j], ys[i])`.
#[derive(Clone, Debug)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Grid coordinates along x (increasing).
    pub xs: Vec<f64>,
    /// Grid coordinates along y (increasing).
    pub ys: Vec<f64>,
    /// One row per y, one column per x. Non-finite values are drawn grey.
    pub values: Vec<Vec<f64>>,
    /// Colour by log10 of the value (values <= 0 drawn grey).
    pub log: bool,
    /// Points drawn on top as labels (e.g. the models spanning the plane).
    pub marks: Vec<LabeledPoint>,
    /// Categorical tick labels, one per grid coordinate of `xs` (a matrix's
    /// column models); empty: numeric ticks.
    pub x_ticks: Vec<String>,
    /// The same for `ys` (`y_ticks[i]` is the label at `ys[i]`).
    pub y_ticks: Vec<String>,
    /// What the colour stands for, written beside the colour bar (e.g.
    /// "training loss"); empty: no caption.
    pub colour_label: String,
}

/// The label of grid coordinate `coords[k]` in `ticks` when `v` is that
/// coordinate (up to round-off), else empty: categorical axes show only
/// their categories.
fn category_at(v: f64, coords: &[f64], ticks: &[String]) -> String {
    let scale = coords.iter().fold(0.0_f64, |m, c| m.max(c.abs())).max(1.0);
    coords
        .iter()
        .zip(ticks)
        .find(|(c, _)| (v - **c).abs() <= 1e-9 * scale)
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}

/// Width in pixels of the colour bar beside every heat map (bar and labels).
const COLOUR_BAR_WIDTH: u32 = 110;
/// Steps of the colour bar's gradient.
const COLOUR_BAR_STEPS: usize = 64;

/// A perceptually ordered colour map (viridis, 5 anchors, linear between).
pub fn viridis(t: f64) -> RGBColor {
    const A: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(A[i].0, A[i + 1].0),
        mix(A[i].1, A[i + 1].1),
        mix(A[i].2, A[i + 1].2),
    )
}

/// Cell edges around increasing grid coordinates (midpoints, extended at the ends).
fn edges(c: &[f64]) -> Vec<f64> {
    match c.len() {
        0 => vec![],
        1 => vec![c[0] - 0.5, c[0] + 0.5],
        n => {
            let mut e = vec![c[0] - (c[1] - c[0]) / 2.0];
            e.extend(c.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            e.push(c[n - 1] + (c[n - 1] - c[n - 2]) / 2.0);
            e
        }
    }
}

/// Contour lines drawn over one heat map: polylines in data coordinates
/// (e.g. from `landscape_surface::Grid::isolines`), all in one colour.
#[derive(Clone, Debug, Default)]
pub struct ContourLines {
    pub lines: Vec<Vec<(f64, f64)>>,
    /// A path drawn on top of the lines (e.g. a projected trajectory):
    /// its points connected in order and circled, in red.
    pub trail: Vec<(f64, f64)>,
}

fn draw_heat_all<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    maps: &[HeatMap],
    contours: &[ContourLines],
    cols: usize,
) -> Result<()> {
    let areas = panel_areas(root, title, maps.len(), cols)?;
    for (k, (m, area)) in maps.iter().zip(areas.iter()).enumerate() {
        let (ex, ey) = (edges(&m.xs), edges(&m.ys));
        if ex.is_empty() || ey.is_empty() {
            continue;
        }
        let tr = |v: f64| {
            if m.log {
                if v > 0.0 {
                    v.log10()
                } else {
                    f64::NAN
                }
            } else {
                v
            }
        };
        let finite: Vec<f64> = m
            .values
            .iter()
            .flatten()
            .map(|&v| tr(v))
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (w, _) = area.dim_in_pixel();
        let (plot_area, bar_area) = area.split_horizontally(w.saturating_sub(COLOUR_BAR_WIDTH));
        let categorical_x = !m.x_ticks.is_empty() && m.x_ticks.len() == m.xs.len();
        let categorical_y = !m.y_ticks.is_empty() && m.y_ticks.len() == m.ys.len();
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(m.title.as_str(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(if categorical_x { 40 } else { 32 })
            .y_label_area_size(if categorical_y { 90 } else { 50 })
            .build_cartesian_2d(ex[0]..ex[ex.len() - 1], ey[0]..ey[ey.len() - 1])
            .map_err(err)?;
        {
            let x_fmt = |v: &f64| category_at(*v, &m.xs, &m.x_ticks);
            let y_fmt = |v: &f64| category_at(*v, &m.ys, &m.y_ticks);
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(RGBColor(235, 235, 235))
                .x_desc(m.x_label.as_str())
                .y_desc(m.y_label.as_str());
            if categorical_x {
                // Unit-spaced categories get ticks at exactly their coordinates
                // (plotters picks step 1 when asked for at most n labels).
                mesh.x_labels(m.xs.len())
                    .x_label_formatter(&x_fmt)
                    .disable_x_mesh();
            }
            if categorical_y {
                mesh.y_labels(m.ys.len())
                    .y_label_formatter(&y_fmt)
                    .disable_y_mesh();
            }
            mesh.draw().map_err(err)?;
        }
        if !finite.is_empty() {
            draw_colour_bar(&bar_area, lo, hi, m.log, &m.colour_label)?;
        }
        let cells = m
            .values
            .iter()
            .enumerate()
            .take(m.ys.len())
            .flat_map(|(i, row)| {
                let (ex, ey) = (&ex, &ey);
                row.iter()
                    .enumerate()
                    .take(m.xs.len())
                    .map(move |(j, &v)| (i, j, v, ex, ey))
            });
        chart
            .draw_series(cells.map(|(i, j, v, ex, ey)| {
                let t = tr(v);
                let color = if t.is_finite() {
                    viridis((t - lo) / span)
                } else {
                    RGBColor(190, 190, 190)
                };
                Rectangle::new([(ex[j], ey[i]), (ex[j + 1], ey[i + 1])], color.filled())
            }))
            .map_err(err)?;
        if let Some(c) = contours.get(k) {
            chart
                .draw_series(
                    c.lines
                        .iter()
                        .filter(|l| l.len() >= 2)
                        .map(|l| PathElement::new(l.clone(), WHITE.mix(0.8).stroke_width(1))),
                )
                .map_err(err)?;
            if !c.trail.is_empty() {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        c.trail.clone(),
                        RED.stroke_width(2),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(c.trail.iter().map(|&p| Circle::new(p, 3, RED.filled())))
                    .map_err(err)?;
            }
        }
        chart
            .draw_series(m.marks.iter().map(|p| {
                Text::new(
                    p.label.clone(),
                    (p.x, p.y),
                    ("sans-serif", 14).into_font().color(&WHITE).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    ),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// The colour bar of a heat map: the colour map from `lo` (bottom) to `hi`
/// (top) with numbered ticks (for a log map, `lo` and `hi` are log10 of the
/// values and the ticks show the values), and `label` beside it.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    log: bool,
    label: &str,
) -> Result<()> {
    let (b0, b1) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let mut builder = ChartBuilder::on(area);
    if !label.is_empty() {
        builder.caption(label, ("sans-serif", 13));
    }
    let mut bar = builder
        .margin_top(if label.is_empty() { 40 } else { 12 })
        .margin_bottom(44)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, b0..b1)
        .map_err(err)?;
    let fmt = |v: &f64| {
        if log {
            format!("{:.2e}", 10f64.powf(*v))
        } else if (b1 - b0).abs() >= 100.0 || (b1 - b0).abs() < 0.01 {
            format!("{v:.2e}")
        } else {
            format!("{v:.3}")
        }
    };
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&fmt)
        .draw()
        .map_err(err)?;
    let step = (b1 - b0) / COLOUR_BAR_STEPS as f64;
    bar.draw_series((0..COLOUR_BAR_STEPS).map(|k| {
        let y0 = b0 + k as f64 * step;
        let t = (k as f64 + 0.5) / COLOUR_BAR_STEPS as f64;
        Rectangle::new([(0.0, y0), (1.0, y0 + step)], viridis(t).filled())
    }))
    .map_err(err)?;
    Ok(())
}

/// Heat maps, written as `<stem>.png` and `<stem>.svg`.
pub fn heat_maps(
    stem: &Path,
    title: &str,
    maps: &[HeatMap],
    cols: usize,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    heat_maps_with_contours(stem, title, maps, &[], cols, size)
}

/// [`heat_maps`] with contour lines over map `k` from `contours[k]` (maps
/// beyond `contours.len()` get none).
pub fn heat_maps_with_contours(
    stem: &Path,
    title: &str,
    maps: &[HeatMap],
    contours: &[ContourLines],
    cols: usize,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    write_both(
        stem,
        size,
        |root| draw_heat_all(root, title, maps, contours, cols),
        |root| draw_heat_all(root, title, maps, contours, cols),
        &|svg| svg,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_png_and_svg_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let panel = ScatterPanel {
            title: "t".into(),
            groups: vec![Group {
                name: "main".into(),
                color: palette(0),
                points: vec![
                    LabeledPoint {
                        x: 0.0,
                        y: 0.0,
                        label: "12.5".into(),
                        tooltip: Some("main, epoch 0, train 12.5% <x>".into()),
                    },
                    LabeledPoint {
                        x: 1.0,
                        y: 2.0,
                        label: "3.0".into(),
                        tooltip: None,
                    },
                ],
                connect: true,
            }],
        };
        let files = scatter_panels(
            &dir.path().join("f"),
            "title",
            &[panel],
            1,
            (400, 300),
            true,
            12,
        )
        .unwrap();
        assert_eq!(files.len(), 2);
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(
            svg.contains("12.5") && svg.contains("main"),
            "labels and legend are in the SVG"
        );
        assert_eq!(svg.matches("<title>").count(), 1, "one tooltip");
        assert!(svg.contains("<title>main: main, epoch 0, train 12.5% &lt;x&gt;</title>"));
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let lines = LinePanel {
            title: "err".into(),
            x_label: "epoch".into(),
            y_label: "%".into(),
            curves: vec![Curve {
                name: "main".into(),
                color: palette(1),
                points: vec![(0.0, 90.0), (1.0, 50.0)],
            }],
        };
        let files = line_panels(&dir.path().join("c"), "", &[lines], 1, (300, 200)).unwrap();
        assert!(files.iter().all(|f| f.exists()));
        assert!(!dir.path().join("c.png.tmp.png").exists());
    }

    #[test]
    fn heat_map_colours_follow_the_values() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
        assert_eq!(edges(&[0.0, 1.0, 3.0]), vec![-0.5, 0.5, 2.0, 4.0]);
        let dir = tempfile::tempdir().unwrap();
        let map = HeatMap {
            title: "loss".into(),
            x_label: "a".into(),
            y_label: "b".into(),
            xs: vec![0.0, 1.0],
            ys: vec![0.0, 1.0],
            values: vec![vec![1.0, 10.0], vec![100.0, f64::NAN]],
            log: true,
            marks: vec![LabeledPoint {
                x: 0.0,
                y: 0.0,
                label: "A".into(),
                tooltip: None,
            }],
            x_ticks: Vec::new(),
            y_ticks: Vec::new(),
            colour_label: "loss".into(),
        };
        let files = heat_maps(
            &dir.path().join("h"),
            "plane",
            std::slice::from_ref(&map),
            1,
            (300, 300),
        )
        .unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        // The smallest value is the map's first colour, the largest its last,
        // the missing one grey; the range is printed in the title.
        for c in ["#440154", "#FDE725", "#BEBEBE"] {
            assert!(svg.to_uppercase().contains(c), "colour {c} missing");
        }
        // The colour bar: its gradient runs over the whole map, and its ticks
        // name the values (a log map: the values, not their logarithms).
        let gradient: Vec<String> = (0..COLOUR_BAR_STEPS)
            .map(|k| {
                let c = viridis((k as f64 + 0.5) / COLOUR_BAR_STEPS as f64);
                format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
            })
            .collect();
        let upper = svg.to_uppercase();
        assert!(
            gradient.iter().all(|c| upper.contains(c.as_str())),
            "colour bar gradient missing"
        );
        for tick in ["1.00e0", "1.00e1", "1.00e2"] {
            assert!(svg.contains(tick), "colour bar tick {tick} missing");
        }
        let contours = ContourLines {
            lines: vec![vec![(0.0, 0.0), (0.5, 0.7), (1.0, 1.0)]],
            trail: Vec::new(),
        };
        let files = heat_maps_with_contours(
            &dir.path().join("hc"),
            "",
            std::slice::from_ref(&map),
            std::slice::from_ref(&contours),
            1,
            (300, 300),
        )
        .unwrap();
        let with = std::fs::read_to_string(&files[1]).unwrap();
        assert!(with.matches("<polyline").count() > svg.matches("<polyline").count());
        // A trail: one more path, and a circle per point.
        let files = heat_maps_with_contours(
            &dir.path().join("ht"),
            "",
            &[map],
            &[ContourLines {
                trail: vec![(0.1, 0.1), (0.4, 0.6), (0.9, 0.2)],
                ..contours
            }],
            1,
            (300, 300),
        )
        .unwrap();
        let trail = std::fs::read_to_string(&files[1]).unwrap();
        assert_eq!(
            trail.matches("<polyline").count(),
            with.matches("<polyline").count() + 1
        );
        assert!(trail.matches("<circle").count() >= 3);
        let lines = LinePanel {
            title: "loss".into(),
            x_label: "t".into(),
            y_label: "".into(),
            curves: vec![Curve {
                name: "train".into(),
                color: palette(1),
                points: vec![(-0.5, 2.0), (1.5, 1.0)],
            }],
        };
        let marks = [VerticalMark {
            x: 1.0,
            label: "to (6 main e6)".into(),
        }];
        let files =
            line_panels_marked(&dir.path().join("l"), "", &[lines], &marks, 1, (300, 200)).unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("to (6 main e6)"));
    }

    #[test]
    fn categorical_heat_map_names_its_rows_and_columns() {
        assert_eq!(
            category_at(2.0, &[1.0, 2.0, 3.0], &["a".into(), "b".into(), "c".into()]),
            "b"
        );
        assert_eq!(
            category_at(2.5, &[1.0, 2.0, 3.0], &["a".into(), "b".into(), "c".into()]),
            ""
        );
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<String> = [
            "retrained 1",
            "retrained 2",
            "retrained 3",
            "retrained 4",
            "reference",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let axis: Vec<f64> = (1..=5).map(f64::from).collect();
        let values: Vec<Vec<f64>> = (0..5)
            .map(|r| (0..5).map(|c| 0.5 + 0.1 * (r + c) as f64 / 8.0).collect())
            .collect();
        let map = HeatMap {
            title: "P(column right | row right)".into(),
            x_label: "column model".into(),
            y_label: "row model".into(),
            xs: axis.clone(),
            ys: axis,
            values,
            log: false,
            marks: Vec::new(),
            x_ticks: labels.clone(),
            y_ticks: labels.iter().rev().cloned().collect(),
            colour_label: "probability".into(),
        };
        let files = heat_maps(&dir.path().join("m"), "", &[map], 1, (700, 600)).unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        // Every category is a tick label, once on each axis; no numeric
        // tick in between (0.5, 1.5, ... or 1.0 .. 5.0) is drawn.
        // (plotters writes each text's content on a line of its own.)
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for l in &labels {
            assert_eq!(texts.iter().filter(|t| *t == l).count(), 2, "tick {l}");
        }
        for n in ["0.5", "1", "1.0", "1.5", "2.0", "2.5", "5.5"] {
            assert!(!texts.contains(&n), "numeric tick {n}");
        }
        // The colour bar spans the values (0.5 .. 0.6) and is captioned.
        assert!(texts.contains(&"0.500") && texts.contains(&"0.600"));
        assert!(texts.contains(&"probability"));
    }
}
