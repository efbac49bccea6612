//! PNG charts (plotters, bitmap backend, DejaVu Sans embedded so no system fonts are needed).
//! Every chart is written atomically.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";

fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// One named line of a [`line_chart`].
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn range_of(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// Line chart with markers and a legend; `log_y` plots the y axis logarithmically.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    init_font();
    crate::io::atomic_write_via_path(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x0, x1) = range_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64);
        if log_y {
            let (y0, y1) = range_of(ys.filter(|v| *v > 0.0));
            let y0 = y0.max(1e-9);
            let mut chart = builder
                .build_cartesian_2d(x0..x1, (y0..y1.max(y0 * 10.0)).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .label_style((FONT, 14))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let c = palette(i);
                let pts: Vec<_> = s.points.iter().copied().filter(|p| p.1 > 0.0).collect();
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map_err(err)?
                    .label(&s.name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FONT, 14))
                .draw()
                .map_err(err)?;
        } else {
            let (y0, y1) = range_of(ys);
            let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .label_style((FONT, 14))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let c = palette(i);
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                    .map_err(err)?
                    .label(&s.name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                if s.points.len() <= 40 {
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(err)?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FONT, 14))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    })
}

/// Grouped vertical bar chart: one group per category, one bar per series inside a group.
/// With a single series this is a plain bar chart. Long category names are shortened from
/// the left (`…layer3.conv1`).
pub fn bar_chart(
    path: impl AsRef<Path>,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    init_font();
    let n = categories.len().max(1);
    let width = (220 + n * (12 + 10 * series.len().max(1))).clamp(700, 4000) as u32;
    crate::io::atomic_write_via_path(path, |tmp| {
        let root = BitMapBackend::new(tmp, (width, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (_, y1) = range_of(series.iter().flat_map(|s| s.1.iter().copied()).chain([0.0]));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(if n > 8 { 150 } else { 40 })
            .y_label_area_size(64)
            // category i's bars are centred on x = i (integer ticks); 15 % headroom for the legend
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..(y1 * 1.15).max(1e-9))
            .map_err(err)?;
        let cats = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .x_labels(n.min(200))
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() > 1e-6 || *x < -1e-6 {
                    return String::new();
                }
                let i = x.round() as usize;
                match cats.get(i) {
                    Some(c) if c.chars().count() > 22 => {
                        let tail: String = c
                            .chars()
                            .rev()
                            .take(21)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        format!("…{tail}")
                    }
                    Some(c) => c.clone(),
                    None => String::new(),
                }
            })
            .x_label_style(if n > 8 {
                (FONT, 11).into_font().transform(FontTransform::Rotate90)
            } else {
                (FONT, 13).into_font().into()
            })
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let k = series.len().max(1) as f64;
        let bw = 0.8 / k;
        for (si, (name, vals)) in series.iter().enumerate() {
            let c = palette(si);
            chart
                .draw_series(vals.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 - 0.4 + si as f64 * bw;
                    Rectangle::new([(x0, 0.0), (x0 + bw, v.max(0.0))], c.filled())
                }))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FONT, 14))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    })
}

/// Histogram of `values` with `bins` equal-width bins.
pub fn histogram(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    values: &[f64],
    bins: usize,
) -> Result<()> {
    init_font();
    let bins = bins.max(1);
    let (lo, hi) = range_of(values.iter().copied());
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / w) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let max = *counts.iter().max().unwrap_or(&1) as f64;
    crate::io::atomic_write_via_path(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0f64..max * 1.05 + 1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("count")
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, c as f64)], palette(0).filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_png(p: &Path) -> bool {
        image::open(p).map(|i| i.width() > 100).unwrap_or(false)
    }

    #[test]
    fn charts_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let l = dir.path().join("l.png");
        line_chart(
            &l,
            "loss",
            "step",
            "loss",
            &[Series::new("a", vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.2)])],
            true,
        )
        .unwrap();
        assert!(is_png(&l));
        let b = dir.path().join("b.png");
        let cats: Vec<String> = (0..30)
            .map(|i| format!("camera.backbone.layer{i}.conv1.weight"))
            .collect();
        bar_chart(
            &b,
            "sparsity",
            "fraction pruned",
            &cats,
            &[("x".into(), (0..30).map(|i| i as f64 / 30.0).collect())],
        )
        .unwrap();
        assert!(is_png(&b));
        let h = dir.path().join("h.png");
        histogram(&h, "latency", "ms", &[1.0, 2.0, 2.5, 9.0], 10).unwrap();
        assert!(is_png(&h));
    }
}
