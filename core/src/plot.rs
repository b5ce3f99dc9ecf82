//! PNG charts with plotters (bitmap backend, DejaVu Sans embedded: no system fonts needed).

use crate::error::FileError;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// Moving average over `window` points.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let w = window.max(1);
    let mut out = Vec::with_capacity(points.len());
    let mut sum = 0.0;
    for (i, &(x, y)) in points.iter().enumerate() {
        sum += y;
        if i >= w {
            sum -= points[i - w].1;
        }
        out.push((x, sum / (i + 1).min(w) as f64));
    }
    out
}

fn range(vals: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (if scale == Scale::Log { 1e-3 } else { 0.0 }, 1.0);
    }
    if hi <= lo {
        hi = lo + lo.abs().max(1e-3);
    }
    match scale {
        Scale::Linear => (lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)),
        Scale::Log => (lo / 1.2, hi * 1.2),
    }
}

/// Compact tick label.
fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.2e}")
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Line chart of named series to a PNG file.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_scale: Scale,
    y_scale: Scale,
) -> Result<(), FileError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| FileError::new(path, e.to_string());
    let xr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)), x_scale);
    let yr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)), y_scale);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(8)
                .x_label_formatter(&|v| num(*v))
                .y_label_formatter(&|v| num(*v))
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = pts
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite() && (y_scale == Scale::Linear || p.1 > 0.0))
                    .filter(|p| x_scale == Scale::Linear || p.0 > 0.0)
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
                if pts.len() <= 40 {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(|e| err(&e))?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    let mut builder = ChartBuilder::on(&root);
    builder.caption(title, ("sans-serif", 24)).margin(12).x_label_area_size(40).y_label_area_size(60);
    match (x_scale, y_scale) {
        (Scale::Linear, Scale::Linear) => {
            draw!(builder.build_cartesian_2d(xr.0..xr.1, yr.0..yr.1).map_err(|e| err(&e))?)
        }
        (Scale::Linear, Scale::Log) => {
            draw!(builder.build_cartesian_2d(xr.0..xr.1, (yr.0..yr.1).log_scale()).map_err(|e| err(&e))?)
        }
        (Scale::Log, Scale::Linear) => {
            draw!(builder.build_cartesian_2d((xr.0..xr.1).log_scale(), yr.0..yr.1).map_err(|e| err(&e))?)
        }
        (Scale::Log, Scale::Log) => {
            draw!(builder.build_cartesian_2d((xr.0..xr.1).log_scale(), (yr.0..yr.1).log_scale()).map_err(|e| err(&e))?)
        }
    }
    root.present().map_err(|e| err(&e))
}

/// Bar chart of named values in [0, y_max] to a PNG file.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)], y_max: f64) -> Result<(), FileError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| FileError::new(path, e.to_string());
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let n = bars.len().max(1) as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..(n - 1).max(0)).into_segmented(), 0f64..y_max)
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_style(("sans-serif", 18))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let c = COLORS[i % COLORS.len()];
            let mut r = Rectangle::new(
                [(SegmentValue::Exact(i as i32), 0.0), (SegmentValue::Exact(i as i32 + 1), v.clamp(0.0, y_max))],
                c.filled(),
            );
            r.set_margin(0, 0, 20, 20);
            r
        }))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let y = (v.clamp(0.0, y_max) + y_max * 0.02).min(y_max * 0.96);
            Text::new(format!("{v:.3}"), (SegmentValue::CenterOf(i as i32), y), ("sans-serif", 16))
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Confusion matrix `counts[true][predicted]` as a PNG heatmap: rows normalised to the true
/// class's count (colour), the raw counts printed in the cells.
pub fn confusion_matrix(path: &Path, title: &str, names: &[String], counts: &[Vec<usize>]) -> Result<(), FileError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| FileError::new(path, e.to_string());
    let k = counts.len();
    let cell = (600 / k.max(1)).clamp(12, 60) as u32;
    let side = cell * k as u32;
    let root = BitMapBackend::new(path, (side + 220, side + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let label = |i: usize| {
        let s = names.get(i).cloned().unwrap_or_else(|| i.to_string());
        if s.chars().count() > 12 { s.chars().take(11).collect::<String>() + "…" } else { s }
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(110)
        .build_cartesian_2d((0..k as i32 - 1).into_segmented(), (0..k as i32 - 1).into_segmented())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(k)
        .y_labels(k)
        .x_desc("predicted")
        .y_desc("true")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => label(*i as usize).chars().take((cell / 7).max(2) as usize).collect(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) < k => label(k - 1 - *i as usize),
            _ => String::new(),
        })
        .x_label_style(("sans-serif", 11))
        .y_label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    let mut cells = Vec::new();
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &c) in row.iter().enumerate() {
            cells.push((p as i32, (k - 1 - t) as i32, c, c as f64 / total));
        }
    }
    chart
        .draw_series(cells.iter().map(|&(x, y, _, f)| {
            let v = (255.0 * (1.0 - f)) as u8;
            Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                RGBColor(v, v, 255).filled(),
            )
        }))
        .map_err(|e| err(&e))?;
    if cell >= 24 {
        chart
            .draw_series(cells.iter().map(|&(x, y, c, f)| {
                let colour = if f > 0.5 { WHITE } else { BLACK };
                Text::new(
                    c.to_string(),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    ("sans-serif", 12).into_font().color(&colour),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// Scatter plot of labelled groups of points (one colour per group, up to 10) to a PNG file.
pub fn scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[(String, Vec<(f64, f64)>)],
) -> Result<(), FileError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| FileError::new(path, e.to_string());
    let xr = range(groups.iter().flat_map(|g| g.1.iter().map(|p| p.0)), Scale::Linear);
    let yr = range(groups.iter().flat_map(|g| g.1.iter().map(|p| p.1)), Scale::Linear);
    let root = BitMapBackend::new(path, (800, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| num(*v))
        .y_label_formatter(&|v| num(*v))
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| err(&e))?;
    const MORE: [RGBColor; 4] =
        [RGBColor(227, 119, 194), RGBColor(127, 127, 127), RGBColor(188, 189, 34), RGBColor(23, 190, 207)];
    for (i, (name, pts)) in groups.iter().enumerate() {
        let c = if i < COLORS.len() { COLORS[i] } else { MORE[(i - COLORS.len()) % MORE.len()] };
        let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.mix(0.7).filled())))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// A heatmap PNG (a spectrogram): `values[x][y]` over x ∈ [0, x_max), y ∈ [0, y_max), colour
/// from dark (the smallest value) to bright (the largest).
pub fn heatmap(path: &Path, title: &str, x: (&str, f64), y: (&str, f64), values: &[Vec<f32>]) -> Result<(), FileError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| FileError::new(path, e.to_string());
    let (nx, ny) = (values.len(), values.first().map_or(0, Vec::len));
    if nx == 0 || ny == 0 {
        return Err(FileError::new(path, "nothing to draw: an empty spectrogram"));
    }
    let lo = values.iter().flatten().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
    let root = BitMapBackend::new(path, (900, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x.1, 0.0..y.1)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().disable_mesh().x_desc(x.0).y_desc(y.0).draw().map_err(|e| err(&e))?;
    let (dx, dy) = (x.1 / nx as f64, y.1 / ny as f64);
    let cells = values.iter().enumerate().flat_map(|(i, col)| col.iter().enumerate().map(move |(j, &v)| (i, j, v)));
    chart
        .draw_series(cells.map(|(i, j, v)| {
            let f = if hi > lo { ((v - lo) / (hi - lo)) as f64 } else { 0.0 };
            // dark blue → magenta → yellow
            let colour =
                RGBColor((255.0 * f.sqrt()) as u8, (255.0 * f * f) as u8, (120.0 * (1.0 - f) + 40.0 * f) as u8);
            Rectangle::new(
                [(i as f64 * dx, j as f64 * dy), ((i + 1) as f64 * dx, (j + 1) as f64 * dy)],
                colour.filled(),
            )
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
