//! PNG plots of a protein run with plotters: the oracle-fitness histogram of the designs over
//! that of the training split, and fitness vs diversity per seed with / without interaction.
//! Axes and labels are drawn when a system font is found, else the plot is drawn bare (no
//! text); `report.md` says what the colours mean either way.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// Colour of the designs / the run with interaction.
pub const DESIGN: RGBColor = RGBColor(220, 30, 30);
/// Colour of the training split / the run without interaction.
pub const REFERENCE: RGBColor = RGBColor(60, 90, 200);

/// Fraction of `values` in each of `bins` equal bins over `[lo, hi]` (values outside are
/// put in the end bins).
fn density(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    for v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    let n = values.len().max(1) as f64;
    counts.iter().map(|c| c / n).collect()
}

/// Overlaid histograms (fractions) of `designs` (red) and `training` (blue, behind).
pub fn fitness_histogram(
    path: &Path,
    designs: &[f64],
    training: &[f64],
    bins: usize,
) -> Result<()> {
    histogram(path, designs, training, bins, true)
        .or_else(|_| histogram(path, designs, training, bins, false))
}

fn histogram(
    path: &Path,
    designs: &[f64],
    training: &[f64],
    bins: usize,
    labelled: bool,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let all = designs.iter().chain(training).filter(|v| v.is_finite());
    let lo = all.clone().copied().fold(0.0f64, f64::min);
    let hi = all.copied().fold(1.0f64, f64::max);
    let d = density(designs, lo, hi, bins);
    let t = density(training, lo, hi, bins);
    let top = d.iter().chain(&t).copied().fold(0.0, f64::max).max(1e-9) * 1.05;
    let root = BitMapBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(12);
    if labelled {
        builder
            .caption(
                "oracle fitness: designs (red) vs training split (blue)",
                ("sans-serif", 18),
            )
            .x_label_area_size(36)
            .y_label_area_size(48);
    }
    let mut chart = builder
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(|e| err(&e))?;
    if labelled {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("normalised oracle fitness")
            .y_desc("fraction")
            .draw()
            .map_err(|e| err(&e))?;
    }
    let width = (hi - lo) / bins as f64;
    for (values, color) in [(&t, REFERENCE.mix(0.5)), (&d, DESIGN.mix(0.6))] {
        chart
            .draw_series(values.iter().enumerate().map(|(i, &h)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, h)], color.filled())
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// One point per seed: `(diversity, fitness, with_interaction)`; red with, blue without.
pub fn fitness_vs_diversity(path: &Path, points: &[(f64, f64, bool)]) -> Result<()> {
    let axes = Axes {
        caption: "per seed: with (red) / without (blue) interaction",
        x: "diversity",
        y: "fitness",
        radius: 6,
    };
    scatter(path, points, &axes, true).or_else(|_| scatter(path, points, &axes, false))
}

/// The predictor on its held-out rows: one blue point per row, `(measured, predicted)`.
pub fn held_out_scatter(path: &Path, pairs: &[[f32; 2]]) -> Result<()> {
    let points: Vec<(f64, f64, bool)> = pairs
        .iter()
        .map(|&[t, p]| (f64::from(t), f64::from(p), false))
        .collect();
    let axes = Axes {
        caption: "predictor on its held-out rows",
        x: "measured score",
        y: "predicted score",
        radius: 3,
    };
    scatter(path, &points, &axes, true).or_else(|_| scatter(path, &points, &axes, false))
}

/// Labels and marker size of a [`scatter`].
struct Axes {
    caption: &'static str,
    x: &'static str,
    y: &'static str,
    radius: i32,
}

/// A scatter plot; `labelled = false` draws no text (the fallback where no font is found).
fn scatter(path: &Path, points: &[(f64, f64, bool)], axes: &Axes, labelled: bool) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let finite = points.iter().filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in finite.clone() {
        (x0, x1, y0, y1) = (x0.min(p.0), x1.max(p.0), y0.min(p.1), y1.max(p.1));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |a: f64, b: f64| ((b - a) * 0.15).max(0.05);
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let root = BitMapBackend::new(path, (520, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(12);
    if labelled {
        builder
            .caption(axes.caption, ("sans-serif", 16))
            .x_label_area_size(36)
            .y_label_area_size(48);
    }
    let mut chart = builder
        .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
        .map_err(|e| err(&e))?;
    if labelled {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .draw()
            .map_err(|e| err(&e))?;
    }
    chart
        .draw_series(finite.map(|&(x, y, with)| {
            let c = if with { DESIGN } else { REFERENCE };
            Circle::new((x, y), axes.radius, c.filled())
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_sums_to_one_and_clips() {
        let d = density(&[0.0, 0.1, 0.55, 0.99, 1.5, -1.0], 0.0, 1.0, 4);
        assert_eq!(d, vec![3.0 / 6.0, 0.0, 1.0 / 6.0, 2.0 / 6.0]);
    }

    #[test]
    fn writes_both_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("h.png");
        fitness_histogram(&h, &[0.5, 0.6, 0.7], &[0.1, 0.2, 0.3, 0.4], 10).unwrap();
        let s = dir.path().join("s.png");
        fitness_vs_diversity(&s, &[(4.0, 0.6, true), (3.0, 0.55, false)]).unwrap();
        for p in [h, s] {
            assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
        }
    }
}
