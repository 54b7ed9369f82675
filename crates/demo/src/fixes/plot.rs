//! `fixes --plot`: each fix's distance from the large-batch run after every step, on a log
//! scale, one line per fix and one panel per optimizer, drawn with `plotters`' SVG backend.

use std::path::Path;

use plotters::prelude::*;

use super::{FixesReport, FixesRun};

/// Distances of exactly 0 are drawn at this height (a log scale has no 0).
pub const FLOOR: f64 = 1e-10;

/// The colours of the fixes (`none`, `lr/k`, `loss/k`, `size/batch`, and `tokens/total` of
/// `tokens`).
const COLOURS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One panel: a title, the number of steps, and the fixes' runs (the batched run left out).
pub struct Panel<'a> {
    /// The caption.
    pub title: String,
    /// Optimizer steps.
    pub steps: usize,
    /// The runs drawn, one line each.
    pub fixes: &'a [FixesRun],
}

impl FixesReport {
    /// This report's panel: its optimizer and k, its fixes.
    pub fn panel(&self) -> Panel<'_> {
        let c = &self.config;
        let title =
            format!("{}{}, k = {}", crate::args::describe_optimizer(&c.optimizer), c.setup_suffix(), c.micro_batches);
        Panel { title, steps: c.steps, fixes: &self.runs[1..] }
    }
}

/// The chart of `reports` (one panel each) as SVG text.
///
/// # Errors
/// A drawing error of the backend, as text.
pub fn render_svg(reports: &[FixesReport]) -> Result<String, String> {
    render_panels(&reports.iter().map(FixesReport::panel).collect::<Vec<_>>())
}

/// The chart of `panels` (two a row) as SVG text.
///
/// # Errors
/// A drawing error of the backend, as text.
pub fn render_panels(panels: &[Panel<'_>]) -> Result<String, String> {
    let cols = if panels.len() > 1 { 2 } else { 1 };
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (560 * cols as u32, 340 * rows as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, p) in root.split_evenly((rows, cols)).iter().zip(panels) {
            panel(area, p).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Panel<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (fixes, steps) = (p.fixes, p.steps);
    let top = fixes.iter().flat_map(|r| r.distances.iter().copied()).fold(FLOOR, f64::max);
    let x_end = (steps as f64).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(58)
        .build_cartesian_2d(1.0..x_end, (FLOOR..top * 10.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("distance from batched (relative)")
        .x_labels(steps.clamp(2, 10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|&y| if y <= FLOOR * 1.001 { "0".into() } else { format!("{y:.0e}") })
        .draw()?;
    for (i, run) in fixes.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // the last two fixes often coincide: draw them wider underneath
        let style = colour.stroke_width(if i >= 2 { 5 - i as u32 } else { 2 });
        let points = run.distances.iter().enumerate().map(|(s, &d)| ((s + 1) as f64, d.max(FLOOR)));
        chart
            .draw_series(LineSeries::new(points, style).point_size(3))?
            .label(run.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Draws `reports` into the SVG file `path` through [`tapegrad_nn::files`]: a temporary
/// file in the target's folder, flushed and renamed, so a failure leaves the old file (or
/// none) and no temporary file; through a symbolic link the link's target is replaced and
/// the link kept; an existing file's permissions are kept. Check the path first with
/// [`tapegrad_nn::files::check_output`] to refuse it before any work.
///
/// # Errors
/// The drawing fails or the file cannot be written; the message says why (the caller adds
/// the path).
pub fn write_plot(reports: &[FixesReport], path: &Path) -> Result<(), String> {
    write_panels(&reports.iter().map(FixesReport::panel).collect::<Vec<_>>(), path)
}

/// [`write_plot`] of any panels (`tokens --plot`).
///
/// # Errors
/// As [`write_plot`].
pub fn write_panels(panels: &[Panel<'_>], path: &Path) -> Result<(), String> {
    let svg = render_panels(panels)?;
    tapegrad_nn::files::prepare_write(path, svg.as_bytes()).and_then(|p| p.commit()).map_err(|e| e.to_string())
}
