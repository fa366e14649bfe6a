//! `bench.png`: fitness (y) vs diversity (x), one panel per task, one point per method and
//! seed, coloured by method. No text is drawn (no font needed); `bench.md` names the colours.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// Method colours, in table order.
const COLOURS: [(RGBColor, &str); 7] = [
    (RGBColor(120, 120, 120), "grey"),
    (RGBColor(60, 90, 200), "blue"),
    (RGBColor(40, 160, 70), "green"),
    (RGBColor(230, 150, 20), "orange"),
    (RGBColor(150, 60, 190), "purple"),
    (RGBColor(220, 30, 30), "red"),
    (RGBColor(30, 180, 190), "cyan"),
];

/// The name of method `i`'s colour.
pub fn colour_name(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()].1
}

/// One panel per task: points `(method index, diversity, fitness)`.
pub fn fitness_vs_diversity(path: &Path, panels: &[Vec<(usize, f64, f64)>]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let n = panels.len().max(1);
    let root = BitMapBackend::new(path, (360 * n as u32, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, points) in root.split_evenly((1, n)).iter().zip(panels) {
        let finite: Vec<_> = points
            .iter()
            .filter(|p| p.1.is_finite() && p.2.is_finite())
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &finite {
            (x0, x1, y0, y1) = (x0.min(p.1), x1.max(p.1), y0.min(p.2), y1.max(p.2));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let pad = |a: f64, b: f64| ((b - a) * 0.15).max(0.05);
        let (px, py) = (pad(x0, x1), pad(y0, y1));
        let mut chart = ChartBuilder::on(area)
            .margin(14)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                finite.iter().map(|&&(m, x, y)| {
                    Circle::new((x, y), 5, COLOURS[m % COLOURS.len()].0.filled())
                }),
            )
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_with_empty_and_full_panels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.png");
        fitness_vs_diversity(&p, &[vec![(0, 3.0, 0.4), (1, 5.0, 0.6)], vec![]]).unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
    }
}
