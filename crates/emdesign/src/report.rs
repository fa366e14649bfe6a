//! Report files: `report.json` (machine-readable, every number) and `report.md` (a short
//! table for people), with the wall time of every stage.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::stage::cache::write_atomic;

/// One stage's line in a report.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    /// Stage name.
    pub stage: String,
    /// Wall time of the run that produced its output, seconds.
    pub wall_secs: f64,
    /// Its cache key (short).
    pub key: String,
}

/// A report: a title, named metrics (in order) and stage times.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Workflow name.
    pub name: String,
    /// Workflow kind.
    pub kind: String,
    /// Master seed.
    pub seed: u64,
    /// `(metric, value, note)` in display order.
    pub metrics: Vec<(String, f64, String)>,
    /// Stage wall times.
    pub stages: Vec<StageTime>,
    /// Extra details (JSON object).
    pub details: serde_json::Value,
}

impl Report {
    /// Markdown: a metrics table and a stage-time table.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# {} ({}, seed {})\n\n| metric | value | note |\n|---|---|---|\n",
            self.name, self.kind, self.seed
        );
        for (m, v, note) in &self.metrics {
            let _ = writeln!(s, "| {m} | {v:.6} | {note} |");
        }
        s.push_str("\n| stage | wall time (s) | key |\n|---|---|---|\n");
        for t in &self.stages {
            let _ = writeln!(s, "| {} | {:.2} | `{}` |", t.stage, t.wall_secs, t.key);
        }
        s
    }

    /// Write `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(
            &dir.join("report.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        write_atomic(&dir.join("report.md"), self.markdown().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_both_tables() {
        let r = Report {
            name: "t".into(),
            kind: "toy2d".into(),
            seed: 1,
            metrics: vec![("mmd".into(), 0.01, "lower is better".into())],
            stages: vec![StageTime {
                stage: "data".into(),
                wall_secs: 0.5,
                key: "abc".into(),
            }],
            details: serde_json::json!({}),
        };
        let md = r.markdown();
        assert!(md.contains("| mmd | 0.010000 | lower is better |"), "{md}");
        assert!(md.contains("| data | 0.50 | `abc` |"), "{md}");
    }
}
