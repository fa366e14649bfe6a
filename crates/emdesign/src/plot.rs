//! PNG plots with plotters: the toy2d figure (filled contours of V on a grid, target points,
//! samples on top). No text is drawn, so no font is needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// A scalar field sampled on a `grid x grid` lattice over `[lo, hi]^2` (row-major, y outer).
pub struct Field {
    /// Lower corner.
    pub lo: f64,
    /// Upper corner.
    pub hi: f64,
    /// Cells per axis.
    pub grid: usize,
    /// Values, `grid * grid`, index `iy * grid + ix`.
    pub values: Vec<f64>,
}

/// Number of colour bands of the filled contours.
const LEVELS: usize = 12;

/// Contour band (0..LEVELS) of each value: quantiles of the field, so bands follow the
/// landscape even when V has a long upper tail.
fn bands(values: &[f64]) -> Vec<usize> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return vec![0; values.len()];
    }
    let cuts: Vec<f64> = (1..LEVELS)
        .map(|k| sorted[(k * (sorted.len() - 1)) / LEVELS])
        .collect();
    values
        .iter()
        .map(|v| cuts.iter().filter(|c| v > c).count())
        .collect()
}

/// Colour of band `k`: dark blue (low V) through teal to pale yellow (high V).
fn ramp(k: usize) -> RGBColor {
    let stops = [
        (38.0, 70.0, 140.0),
        (60.0, 160.0, 150.0),
        (250.0, 245.0, 190.0),
    ];
    let t = k as f64 / (LEVELS - 1) as f64 * 2.0;
    let (i, f) = if t >= 2.0 {
        (1, 1.0)
    } else {
        (t.floor() as usize, t.fract())
    };
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Draw `field` as filled contours, `target` points in grey and `samples` in red, to `path`.
pub fn toy2d(path: &Path, field: &Field, target: &[f32], samples: &[f32]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .build_cartesian_2d(field.lo..field.hi, field.lo..field.hi)
        .map_err(|e| err(&e))?;
    let step = (field.hi - field.lo) / field.grid as f64;
    let band = bands(&field.values);
    let cells = (0..field.grid * field.grid).map(|i| {
        let (ix, iy) = (i % field.grid, i / field.grid);
        let x0 = field.lo + ix as f64 * step;
        let y0 = field.lo + iy as f64 * step;
        // low energy = dark blue, high = pale yellow
        Rectangle::new([(x0, y0), (x0 + step, y0 + step)], ramp(band[i]).filled())
    });
    chart.draw_series(cells).map_err(|e| err(&e))?;
    let inside = |p: &&[f32]| {
        p.iter()
            .all(|v| (field.lo..=field.hi).contains(&f64::from(*v)))
    };
    let dots = |pts: &[f32], color: RGBColor, size: i32| {
        pts.chunks(2)
            .filter(inside)
            .map(|p| Circle::new((f64::from(p[0]), f64::from(p[1])), size, color.filled()))
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(dots(target, RGBColor(90, 90, 90), 1))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(dots(samples, RGBColor(220, 30, 30), 2))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_quantiles() {
        let v: Vec<f64> = (0..120).map(f64::from).collect();
        let b = bands(&v);
        assert_eq!(b[0], 0);
        assert_eq!(b[119], LEVELS - 1);
        assert!(b.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.png");
        let field = Field {
            lo: -1.0,
            hi: 1.0,
            grid: 4,
            values: (0..16).map(f64::from).collect(),
        };
        toy2d(&p, &field, &[0.0, 0.0, 0.5, 0.5], &[0.1, -0.1, 5.0, 5.0]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
