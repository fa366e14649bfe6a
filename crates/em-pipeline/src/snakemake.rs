//! `export snakemake`: a Snakefile with one rule per planned stage instance, its declared
//! output the stage's completion record ([`crate::cache::RECORD`], written last), its inputs
//! the upstream stages' records and the stage's input files, and its shell command the tool's
//! own `run WORKFLOW --only ID`. The cluster engine schedules; the tool computes and caches.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cache::RECORD;
use crate::runner::PlannedStage;

/// What a Snakefile is written from.
pub struct Snakefile<'a> {
    /// The tool's name (`emdesign`), for comments.
    pub tool: &'a str,
    /// The tool's version, for the header.
    pub version: &'a str,
    /// The program to call (absolute); `--config <tool>=PATH` overrides it at run time.
    pub program: &'a Path,
    /// Options placed before the subcommand (`--data-dir DIR`), each one word.
    pub global_args: &'a [String],
    /// The workflow file (absolute).
    pub workflow: &'a Path,
    /// The shared run directory (absolute).
    pub run_dir: &'a Path,
    /// The stage instances, in run order (`Runner::plan`).
    pub stages: &'a [PlannedStage],
}

/// A path as a Python string literal (JSON's escapes are Python's); paths must be UTF-8.
fn py_str(path: &Path) -> Result<String> {
    let text = path.to_str().with_context(|| {
        format!(
            "{} is not UTF-8; a Snakefile needs text paths",
            path.display()
        )
    })?;
    py_text(text)
}

/// Text as a Python string literal.
fn py_text(text: &str) -> Result<String> {
    Ok(serde_json::to_string(text)?)
}

/// The Snakemake rule name of a stage id: letters, digits and `_` (others become `_`),
/// never starting with a digit, and never `all` (the default target's name).
pub fn rule_name(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || name == "all" {
        name.insert_str(0, "stage_");
    }
    name
}

impl Snakefile<'_> {
    /// The path of a stage's completion record.
    fn record(&self, stage: &PlannedStage) -> Result<String> {
        py_str(&stage.output.join(RECORD))
    }

    /// The Snakefile's text.
    pub fn render(&self) -> Result<String> {
        if !self.workflow.is_absolute() || !self.run_dir.is_absolute() {
            bail!("a Snakefile needs absolute workflow and run-directory paths");
        }
        let mut names = std::collections::BTreeSet::new();
        for s in self.stages {
            if !names.insert(rule_name(&s.id)) {
                bail!("stage ids `{}` and another map to one rule name", s.id);
            }
        }
        let tool = self.tool;
        let mut out = String::new();
        let w = &mut out;
        writeln!(
            w,
            "# Snakefile for {wf}, written by `{tool} export snakemake` ({tool} {v}).\n\
             # One rule per stage instance: each runs `{tool} run WORKFLOW --only ID` into the shared\n\
             # run directory and declares the stage's completion record ({RECORD}, written last) as\n\
             # its output. {tool} itself decides whether a stage is fresh (its cache key), so an\n\
             # edited workflow needs no edit here unless its stages change: then export again.\n\
             #   snakemake -s Snakefile --cores 2\n\
             #   snakemake -s Snakefile --executor slurm --jobs 20 --default-resources runtime=120\n\
             # (the Slurm line needs snakemake-executor-plugin-slurm; the run directory must be on\n\
             # a file system every node sees). `--config {tool}=PATH` calls another binary,\n\
             # `--config threads=N` sets the threads each job asks for (default 2).\n",
            wf = self.workflow.display(),
            v = self.version,
        )?;
        let program = py_str(self.program)?;
        let global = self
            .global_args
            .iter()
            .map(|a| py_text(a))
            .collect::<Result<Vec<_>>>()?;
        writeln!(w, "PROGRAM = config.get({}, {program})", py_text(tool)?)?;
        writeln!(w, "GLOBAL_ARGS = [{}]", global.join(", "))?;
        writeln!(w, "WORKFLOW = {}", py_str(self.workflow)?)?;
        writeln!(w, "RUN_DIR = {}", py_str(self.run_dir)?)?;
        writeln!(w, "THREADS = int(config.get(\"threads\", 2))\n")?;
        writeln!(w, "rule all:\n    default_target: True\n    input:")?;
        for s in self.stages {
            writeln!(w, "        {},", self.record(s)?)?;
        }
        let by_id = |id: &str| self.stages.iter().find(|p| p.id == id);
        for s in self.stages {
            writeln!(w, "\n# {} ({}), cache key {}", s.id, s.kind, s.key.short())?;
            writeln!(w, "rule {}:", rule_name(&s.id))?;
            let mut inputs = Vec::new();
            for up in &s.upstream {
                let Some(p) = by_id(up) else {
                    bail!("stage `{}` reads `{up}`, which is not in the plan", s.id);
                };
                inputs.push(self.record(p)?);
            }
            for f in &s.input_files {
                inputs.push(py_str(f)?);
            }
            if !inputs.is_empty() {
                writeln!(w, "    input:")?;
                for i in inputs {
                    writeln!(w, "        {i},")?;
                }
            }
            writeln!(w, "    output:\n        {},", self.record(s)?)?;
            writeln!(w, "    params:\n        id={},", py_text(&s.id)?)?;
            writeln!(w, "    threads: THREADS")?;
            writeln!(
                w,
                "    shell:\n        \"RAYON_NUM_THREADS={{threads}} {{PROGRAM:q}} {{GLOBAL_ARGS:q}} run \
                 {{WORKFLOW:q}} --run-dir {{RUN_DIR:q}} --only {{params.id:q}} --quiet\""
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Key;
    use std::path::PathBuf;

    fn stage(id: &str, upstream: &[&str], inputs: &[&str]) -> PlannedStage {
        PlannedStage {
            id: id.into(),
            kind: format!("test.{id}"),
            upstream: upstream.iter().map(|s| s.to_string()).collect(),
            input_files: inputs.iter().map(PathBuf::from).collect(),
            output: PathBuf::from("/r/run").join(id),
            key: Key("0123456789abcdef".into()),
            fresh: false,
        }
    }

    #[test]
    fn rule_names_are_python_identifiers_and_never_all() {
        assert_eq!(rule_name("design-0"), "design_0");
        assert_eq!(rule_name("0fit"), "stage_0fit");
        assert_eq!(rule_name("all"), "stage_all");
        assert_eq!(rule_name("data"), "data");
    }

    #[test]
    fn one_rule_per_stage_with_upstream_records_as_inputs() {
        let stages = [
            stage("data", &[], &["/d/x.csv"]),
            stage("energy", &["data"], &[]),
        ];
        let global = ["--data-dir".to_string(), "/d".to_string()];
        let text = Snakefile {
            tool: "tool",
            version: "1.0",
            program: Path::new("/bin/tool"),
            global_args: &global,
            workflow: Path::new("/r/w f.toml"),
            run_dir: Path::new("/r/run"),
            stages: &stages,
        }
        .render()
        .unwrap();
        let expected_energy = "rule energy:\n    input:\n        \"/r/run/data/stage.json\",\n    \
             output:\n        \"/r/run/energy/stage.json\",\n    params:\n        id=\"energy\",\n";
        assert!(text.contains(expected_energy), "{text}");
        assert!(text.contains("rule data:\n    input:\n        \"/d/x.csv\",\n"));
        assert!(text.contains("GLOBAL_ARGS = [\"--data-dir\", \"/d\"]"));
        assert!(text.contains("WORKFLOW = \"/r/w f.toml\""));
        assert!(text.contains("PROGRAM = config.get(\"tool\", \"/bin/tool\")"));
        assert!(text.contains(
            "rule all:\n    default_target: True\n    input:\n        \"/r/run/data/stage.json\",\n        \"/r/run/energy/stage.json\",\n"
        ));
        assert_eq!(text.matches("\nrule ").count(), 3);
        assert_eq!(text.matches("--only {params.id:q}").count(), 2);
    }

    #[test]
    fn an_upstream_outside_the_plan_and_relative_paths_are_refused() {
        let stages = [stage("energy", &["data"], &[])];
        let mut sf = Snakefile {
            tool: "tool",
            version: "1.0",
            program: Path::new("/bin/tool"),
            global_args: &[],
            workflow: Path::new("/r/w.toml"),
            run_dir: Path::new("/r/run"),
            stages: &stages,
        };
        let err = sf.render().unwrap_err().to_string();
        assert!(
            err.contains("reads `data`, which is not in the plan"),
            "{err}"
        );
        sf.run_dir = Path::new("run");
        assert!(sf.render().unwrap_err().to_string().contains("absolute"));
    }
}
