//! The bench outputs: cells aggregated per (task, method) as mean (std) over seeds, with the
//! published figures of the same split alongside, written as `bench.md`, `bench.csv` and
//! `bench.json` in the bench run directory.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use em_protein::metrics::{MeanStd, mean_std};
use serde::Serialize;

use super::cell::Cell;
use super::config::{BenchPlan, BenchTask};
use crate::stage::cache::write_atomic;
use crate::stage::published;

/// One row: a method on a task over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Task name.
    pub task: String,
    /// Method name (published rows: `published:<name>`).
    pub method: String,
    /// Seeds aggregated (0 for published rows).
    pub seeds: usize,
    /// Fitness mean, std.
    pub fitness: Option<[f64; 2]>,
    /// Diversity mean, std.
    pub diversity: Option<[f64; 2]>,
    /// Novelty mean, std.
    pub novelty: Option<[f64; 2]>,
    /// Mean wall seconds per cell.
    pub wall_secs: Option<f64>,
    /// Mean predictor calls per cell.
    pub calls: Option<f64>,
    /// `n/a (...)` or the citation of a published row.
    pub note: Option<String>,
}

fn ms(values: Vec<f64>) -> Option<[f64; 2]> {
    (!values.is_empty()).then(|| {
        let MeanStd { mean, std } = mean_std(&values);
        [mean, std]
    })
}

/// The rows of the table, tasks then methods in plan order, published rows after each task.
pub fn rows(plan: &BenchPlan, cells: &[Cell]) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for &task in &plan.tasks {
        let name = task.name();
        for v in plan.variants() {
            let label = v.label();
            let mine: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.task == name && c.method == label)
                .collect();
            let ok: Vec<&Cell> = mine.iter().copied().filter(|c| c.note.is_none()).collect();
            let get = |f: fn(&Cell) -> Option<f64>| ok.iter().filter_map(|c| f(c)).collect();
            let n = ok.len().max(1) as f64;
            out.push(Row {
                task: name.clone(),
                method: label,
                seeds: ok.len(),
                fitness: ms(get(|c| c.fitness)),
                diversity: ms(get(|c| c.diversity)),
                novelty: ms(get(|c| c.novelty)),
                wall_secs: (!ok.is_empty())
                    .then(|| ok.iter().map(|c| c.wall_secs).sum::<f64>() / n),
                calls: (!ok.is_empty()).then(|| ok.iter().map(|c| c.calls as f64).sum::<f64>() / n),
                note: mine.iter().find_map(|c| c.note.clone()),
            });
        }
        if let BenchTask::Protein(t, d) = task {
            for p in published::rows(t.name(), d.name())? {
                out.push(Row {
                    task: name.clone(),
                    method: format!("published:{}", p.method),
                    seeds: 0,
                    fitness: Some([p.fitness, f64::NAN]),
                    diversity: Some([p.diversity, f64::NAN]),
                    novelty: Some([p.novelty, f64::NAN]),
                    wall_secs: None,
                    calls: None,
                    note: Some(p.source),
                });
            }
        }
    }
    Ok(out)
}

fn cell(v: Option<[f64; 2]>, digits: usize) -> String {
    match v {
        Some([m, s]) if s.is_nan() => format!("{m:.digits$}"),
        Some([m, s]) => format!("{m:.digits$} ({s:.digits$})"),
        None => "n/a".into(),
    }
}

/// `bench.md`: the budget stated, then one table.
pub fn markdown(plan: &BenchPlan, rows: &[Row], budget_note: &str) -> String {
    let mut s = format!("# {}\n\n", plan.name);
    let _ = writeln!(
        s,
        "Budget: {} predictor calls per (method, task, seed) cell, the same for every method \
         ({budget_note}). Top {} designs per cell go to the oracle. Seeds: {:?}. Fitness, \
         diversity, novelty: mean (std) over seeds; published rows are single figures from \
         `datasets/published.csv`.\n",
        plan.budget, plan.top_k, plan.seeds
    );
    s.push_str("| task | method | seeds | fitness | diversity | novelty | wall s/cell | calls/cell | note |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.task,
            r.method,
            r.seeds,
            cell(r.fitness, 3),
            cell(r.diversity, 2),
            cell(r.novelty, 2),
            r.wall_secs.map_or("-".into(), |w| format!("{w:.1}")),
            r.calls.map_or("-".into(), |c| format!("{c:.0}")),
            r.note.as_deref().unwrap_or("")
        );
    }
    s.push_str("\n`bench.png`: fitness (y) vs diversity (x) per task (panels left to right in table order), one point per method and seed; colours by method in table order: ");
    let names: Vec<String> = plan
        .variants()
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", v.label(), super::plot::colour_name(i)))
        .collect();
    let _ = writeln!(s, "{}.", names.join(", "));
    s
}

/// `bench.csv`: one line per row, mean and std in separate columns.
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "task,method,seeds,fitness_mean,fitness_std,diversity_mean,diversity_std,novelty_mean,novelty_std,wall_secs,calls,note\n",
    );
    let f = |v: Option<[f64; 2]>, i: usize| {
        v.map(|a| a[i])
            .filter(|x| x.is_finite())
            .map_or(String::new(), |x| format!("{x}"))
    };
    for r in rows {
        let note = r.note.clone().unwrap_or_default().replace('"', "'");
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},\"{note}\"",
            r.task,
            r.method,
            r.seeds,
            f(r.fitness, 0),
            f(r.fitness, 1),
            f(r.diversity, 0),
            f(r.diversity, 1),
            f(r.novelty, 0),
            f(r.novelty, 1),
            r.wall_secs.map_or(String::new(), |w| format!("{w:.3}")),
            r.calls.map_or(String::new(), |c| format!("{c:.0}")),
        );
    }
    s
}

/// Writes the three files into `dir`.
pub fn write(dir: &Path, plan: &BenchPlan, cells: &[Cell], budget_note: &str) -> Result<Vec<Row>> {
    let rows = rows(plan, cells)?;
    write_atomic(
        &dir.join("bench.md"),
        markdown(plan, &rows, budget_note).as_bytes(),
    )?;
    write_atomic(&dir.join("bench.csv"), csv(&rows).as_bytes())?;
    let clean = |v: Option<[f64; 2]>| v.map(|a| a.map(|x| x.is_finite().then_some(x)));
    let json_rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "task": r.task, "method": r.method, "seeds": r.seeds,
                "fitness": clean(r.fitness), "diversity": clean(r.diversity),
                "novelty": clean(r.novelty), "wall_secs": r.wall_secs, "calls": r.calls,
                "note": r.note,
            })
        })
        .collect();
    let json = serde_json::json!({
        "name": plan.name, "budget": plan.budget, "budget_note": budget_note,
        "top_k": plan.top_k, "seeds": plan.seeds, "rows": json_rows, "cells": cells,
    });
    write_atomic(
        &dir.join("bench.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_format_mean_std_and_published() {
        assert_eq!(cell(Some([0.5, 0.25]), 2), "0.50 (0.25)");
        assert_eq!(cell(Some([0.5, f64::NAN]), 1), "0.5");
        assert_eq!(cell(None, 1), "n/a");
        assert_eq!(ms(vec![1.0, 3.0]), Some([2.0, 1.0]));
    }
}
