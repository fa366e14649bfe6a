//! `bench.png`: fitness (y) vs diversity (x), one panel per task, one point per method and
//! seed, coloured by method. Panel titles, axes and a method legend are drawn when a system
//! font is found, else the plot is drawn bare (no text); `bench.md` names the colours.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Method colours, in table order.
const COLOURS: [(RGBColor, &str); 12] = [
    (RGBColor(120, 120, 120), "grey"),
    (RGBColor(60, 90, 200), "blue"),
    (RGBColor(40, 160, 70), "green"),
    (RGBColor(230, 150, 20), "orange"),
    (RGBColor(150, 60, 190), "purple"),
    (RGBColor(220, 30, 30), "red"),
    (RGBColor(30, 180, 190), "cyan"),
    (RGBColor(0, 0, 0), "black"),
    (RGBColor(240, 110, 170), "pink"),
    (RGBColor(140, 90, 40), "brown"),
    (RGBColor(150, 190, 40), "olive"),
    (RGBColor(20, 40, 110), "navy"),
];

/// The name of method `i`'s colour.
pub fn colour_name(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()].1
}

/// A panel's chart: f64 axes on a bitmap.
pub type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The data bounds `(x0, x1, y0, y1)` of `points`, or the unit square when there are none.
pub fn bounds<'p>(points: impl IntoIterator<Item = &'p (f64, f64)>) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.0, 1.0);
    }
    (x0, x1, y0, y1)
}

/// Draws the series labels of `chart` at `position` (white box, black border).
pub fn legend<'a>(chart: &mut Chart<'a, 'a>, position: SeriesLabelPosition) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())
}

/// A task's panel: its name and points `(method index, diversity, fitness)`.
pub struct Panel {
    /// Task name (the panel title).
    pub task: String,
    /// `(method index, diversity, fitness)`.
    pub points: Vec<(usize, f64, f64)>,
}

/// One panel per task; `methods` names the method indices (legend, first panel).
pub fn fitness_vs_diversity(path: &Path, panels: &[Panel], methods: &[&str]) -> Result<()> {
    draw(path, panels, methods, true).or_else(|_| draw(path, panels, methods, false))
}

fn draw(path: &Path, panels: &[Panel], methods: &[&str], labelled: bool) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let n = panels.len().max(1);
    let root = BitMapBackend::new(path, (380 * n as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (i, (area, panel)) in root.split_evenly((1, n)).iter().zip(panels).enumerate() {
        let finite: Vec<_> = panel
            .points
            .iter()
            .filter(|p| p.1.is_finite() && p.2.is_finite())
            .collect();
        let xy: Vec<(f64, f64)> = finite.iter().map(|p| (p.1, p.2)).collect();
        let (x0, x1, y0, y1) = bounds(&xy);
        let pad = |a: f64, b: f64| ((b - a) * 0.15).max(0.05);
        let (px, py) = (pad(x0, x1), pad(y0, y1));
        let mut builder = ChartBuilder::on(area);
        builder.margin(14);
        if labelled {
            builder
                .caption(&panel.task, ("sans-serif", 18))
                .x_label_area_size(36)
                .y_label_area_size(48);
        }
        let mut chart = builder
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh().disable_y_mesh();
        if labelled {
            mesh.x_desc("diversity").y_desc("fitness");
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        for (m, name) in methods.iter().enumerate() {
            let colour = COLOURS[m % COLOURS.len()].0;
            let series = chart
                .draw_series(
                    finite
                        .iter()
                        .filter(|p| p.0 == m)
                        .map(|&&(_, x, y)| Circle::new((x, y), 5, colour.filled())),
                )
                .map_err(|e| err(&e))?;
            if labelled && i == 0 {
                series
                    .label(*name)
                    .legend(move |(x, y)| Circle::new((x, y), 4, colour.filled()));
            }
        }
        if labelled && i == 0 {
            legend(&mut chart, SeriesLabelPosition::LowerLeft).map_err(|e| err(&e))?;
        }
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
        let panels = [
            Panel {
                task: "aav-hard".into(),
                points: vec![(0, 3.0, 0.4), (1, 5.0, 0.6)],
            },
            Panel {
                task: "ehrlich".into(),
                points: vec![],
            },
        ];
        fitness_vs_diversity(&p, &panels, &["random", "adalead"]).unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
    }
}
