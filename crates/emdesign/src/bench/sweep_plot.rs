//! `t_end_sweep.png`: the paper's App. A.2 effect. One row per task, one panel per metric
//! (oracle fitness, diversity, novelty) against t_end, one line per swept method (the
//! unguided energy with and without its contrastive phase): the mean over seeds, with each
//! seed's value as a dot.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::cell::Cell;
use super::config::{BenchPlan, SWEPT};
use super::plot::{bounds, legend};

/// A metric of a cell.
type Metric = fn(&Cell) -> Option<f64>;

const METRICS: [(&str, Metric); 3] = [
    ("fitness", |c| c.fitness),
    ("diversity", |c| c.diversity),
    ("novelty", |c| c.novelty),
];

const LINES: [RGBColor; 2] = [RGBColor(220, 30, 30), RGBColor(60, 90, 200)];

/// Points `(t_end, value)` of `method` on `task` for metric `f`.
fn points(
    cells: &[Cell],
    task: &str,
    method: &str,
    f: fn(&Cell) -> Option<f64>,
) -> Vec<(f64, f64)> {
    cells
        .iter()
        .filter(|c| c.task == task && c.method.split(' ').next() == Some(method))
        .filter_map(|c| Some((c.t_end?, f(c)?)))
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect()
}

/// The mean value at each distinct t_end, in increasing t_end.
fn means(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut ts: Vec<f64> = points.iter().map(|p| p.0).collect();
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    ts.into_iter()
        .map(|t| {
            let v: Vec<f64> = points.iter().filter(|p| p.0 == t).map(|p| p.1).collect();
            (t, v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// Writes the sweep plot of the plan's protein tasks (labelled when a font is found).
pub fn write(path: &Path, plan: &BenchPlan, cells: &[Cell]) -> Result<()> {
    draw(path, plan, cells, true).or_else(|_| draw(path, plan, cells, false))
}

fn draw(path: &Path, plan: &BenchPlan, cells: &[Cell], labelled: bool) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let tasks: Vec<String> = plan
        .tasks
        .iter()
        .map(|t| t.name())
        .filter(|t| cells.iter().any(|c| &c.task == t && c.t_end.is_some()))
        .collect();
    let rows = tasks.len().max(1);
    let root = BitMapBackend::new(path, (3 * 360, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((rows, METRICS.len()));
    for (r, task) in tasks.iter().enumerate() {
        for (m, (metric, f)) in METRICS.iter().enumerate() {
            let series: Vec<Vec<(f64, f64)>> = SWEPT
                .iter()
                .map(|s| points(cells, task, s.name(), *f))
                .collect();
            let (x0, x1, y0, y1) = bounds(series.iter().flatten());
            let (px, py) = (((x1 - x0) * 0.08).max(0.05), ((y1 - y0) * 0.15).max(0.02));
            let mut builder = ChartBuilder::on(&areas[r * METRICS.len() + m]);
            builder.margin(12);
            if labelled {
                builder
                    .caption(format!("{task}: {metric}"), ("sans-serif", 16))
                    .x_label_area_size(32)
                    .y_label_area_size(44);
            }
            let mut chart = builder
                .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
                .map_err(|e| err(&e))?;
            let mut mesh = chart.configure_mesh();
            mesh.disable_x_mesh().disable_y_mesh();
            if labelled {
                mesh.x_desc("t_end").y_desc(*metric);
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw().map_err(|e| err(&e))?;
            for (i, pts) in series.iter().enumerate() {
                let colour = LINES[i % LINES.len()];
                chart
                    .draw_series(
                        pts.iter()
                            .map(|&(x, y)| Circle::new((x, y), 3, colour.filled())),
                    )
                    .map_err(|e| err(&e))?;
                let line = chart
                    .draw_series(LineSeries::new(means(pts), colour.stroke_width(2)))
                    .map_err(|e| err(&e))?;
                if labelled && r == 0 && m == 0 {
                    line.label(SWEPT[i].name()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
            if labelled && r == 0 && m == 0 {
                legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(|e| err(&e))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(method: &str, t_end: f64, fitness: f64) -> Cell {
        Cell {
            key: String::new(),
            method: format!("{method} t_end={t_end}"),
            t_end: Some(t_end),
            task: "aav-hard".into(),
            seed: 0,
            note: None,
            fitness: Some(fitness),
            diversity: Some(1.0),
            novelty: Some(2.0),
            n_designs: 1,
            calls: 1,
            wall_secs: 0.0,
        }
    }

    #[test]
    fn means_average_seeds_per_t_end_in_order() {
        let cells = [
            cell("em-unguided", 2.0, 0.5),
            cell("em-unguided", 1.0, 0.2),
            cell("em-unguided", 2.0, 0.7),
            cell("em-warmup-unguided", 1.0, 0.9),
        ];
        let p = points(&cells, "aav-hard", "em-unguided", |c| c.fitness);
        assert_eq!(p.len(), 3);
        let m = means(&p);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], (1.0, 0.2));
        assert!((m[1].0 - 2.0).abs() < 1e-12 && (m[1].1 - 0.6).abs() < 1e-12);
    }

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path().join("b.toml");
        std::fs::write(
            &bench,
            "[bench]\nbudget = 1\nmethods = [\"em-unguided\"]\ntasks = [\"aav-hard\"]\nt_end_sweep = [1.0, 2.0]\n",
        )
        .unwrap();
        let plan = super::super::config::load(&bench, &Default::default()).unwrap();
        let cells = [cell("em-unguided", 1.0, 0.2), cell("em-unguided", 2.0, 0.4)];
        let p = dir.path().join("s.png");
        write(&p, &plan, &cells).unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
    }
}
