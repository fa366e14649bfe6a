//! The command line, as clap derive types: `run`, `round`, `check`, `plan` (alias
//! `list-stages`), `export snakemake`, `clean`, `unlock`, `toy`, `data`, `oracle`, `eval`.
//! Parsing only; `commands.rs` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Energy Matching design workflows: staged, cached, resumable.
#[derive(Parser, Debug)]
#[command(name = "emdesign", version, about)]
pub struct Cli {
    /// Directory holding the larger data files (ground truths, oracles).
    #[arg(long, global = true, env = "EMDESIGN_DATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a workflow: every stale stage, in order, reusing fresh ones.
    Run(RunArgs),
    /// One lab round on your own data: merge the measured scores of proposed designs into
    /// the training data, retrain, and propose the next batch (never a measured sequence) in
    /// `<run_dir>/round-<k>/`; appends a row to `<run_dir>/rounds.csv`. Round 0 is the plain
    /// `emdesign run`.
    Round(RoundArgs),
    /// Parse and check a workflow file without running anything.
    Check {
        /// The workflow TOML file.
        workflow: PathBuf,
    },
    /// List a workflow's stages with their cache key and whether they are fresh; `--json`
    /// prints the stage graph (ids, inputs, outputs, keys) for a workflow engine.
    #[command(visible_alias = "list-stages")]
    Plan(PlanArgs),
    /// Write the stage graph for a workflow engine (`export snakemake W > Snakefile`).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Remove a workflow's run directory: what emdesign wrote there. Lab rounds
    /// (`round-<k>/`, `rounds.csv`) stay unless `--rounds` is given.
    Clean(CleanArgs),
    /// Remove the run locks of a workflow's run directory (the run's and every stage's, or
    /// one stage's with `--stage`) left by a process that no longer runs, e.g. on another
    /// host; says what it removed. A lock of a running process on this host is refused.
    Unlock(UnlockArgs),
    /// Shortcut for the 2D workflow: train Energy Matching on a 2D target and sample it.
    Toy(ToyArgs),
    /// Protein data: benchmark splits and the data directory.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Score the sequences of a FASTA or CSV file with a task's oracle.
    Oracle {
        /// The benchmark task whose oracle scores the sequences.
        #[arg(long, value_enum)]
        task: Task,
        /// A FASTA or CSV file of sequences.
        file: PathBuf,
    },
    /// Benchmark design methods x tasks x seeds under one predictor-call budget.
    Bench(crate::bench::BenchArgs),
    /// Image benchmark tools (`image fid A B`).
    Image {
        #[command(subcommand)]
        command: crate::image_cmd::ImageCommand,
    },
    /// Evaluate designs against a benchmark split (fitness, diversity, novelty).
    Eval {
        /// The benchmark task.
        #[arg(long, value_enum)]
        task: Task,
        /// The split difficulty.
        #[arg(long, value_enum)]
        difficulty: Difficulty,
        /// A FASTA or CSV file of designed sequences.
        designs: PathBuf,
        /// Where to write the JSON report.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Arguments of `emdesign run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workflow TOML file.
    pub workflow: PathBuf,
    /// Redo this stage and every stage after it, even when fresh (with `--only`: redo that
    /// one stage).
    #[arg(long, value_name = "STAGE")]
    pub force: Option<String>,
    /// Run only this stage instance (an id from `emdesign plan`), into the shared run
    /// directory; its upstream stages must be finished and fresh. What a cluster engine
    /// calls per job; `summary.json` is left to plain runs.
    #[arg(long, value_name = "ID")]
    pub only: Option<String>,
    /// Run directory (default: the workflow's `run_dir`, relative to the workflow file).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// No progress bars and no per-stage summary lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `emdesign round`.
#[derive(Args, Debug)]
pub struct RoundArgs {
    /// The workflow TOML file (`[data] source = "file"`), already run once (round 0).
    pub workflow: PathBuf,
    /// The lab's results: measured designs in the format of the workflow's data file (its
    /// sequence or mutation column and its score column).
    #[arg(long, value_name = "FILE")]
    pub measured: PathBuf,
    /// Run directory of round 0 (default: the workflow's `run_dir`).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// No progress bars and no per-stage summary lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of commands that only need a workflow and its run directory.
#[derive(Args, Debug)]
pub struct WorkflowArgs {
    /// The workflow TOML file.
    pub workflow: PathBuf,
    /// Run directory (default: the workflow's `run_dir`).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
}

/// Arguments of `emdesign clean`.
#[derive(Args, Debug)]
pub struct CleanArgs {
    /// The workflow and its run directory.
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Also remove the lab rounds (`round-<k>/` folders and `rounds.csv`, which hold copies of
    /// your measurements); without it they are kept and named.
    #[arg(long)]
    pub rounds: bool,
}

/// Arguments of `emdesign unlock`.
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// The workflow and its run directory.
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Remove only this stage instance's lock.
    #[arg(long, value_name = "ID")]
    pub stage: Option<String>,
}

/// Arguments of `emdesign plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The workflow and its run directory.
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Print the stage graph as JSON instead of one line per stage.
    #[arg(long)]
    pub json: bool,
}

/// `emdesign export ...`.
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// A Snakefile on stdout: one rule per stage instance, its output the stage's completion
    /// record, its command `emdesign run WORKFLOW --run-dir DIR --only ID` (the data
    /// directory, if given, passed on). Run it with `snakemake -s Snakefile --cores 2`, or on
    /// Slurm with `--executor slurm`.
    Snakemake(WorkflowArgs),
}

/// Arguments of `emdesign toy`.
#[derive(Args, Debug)]
pub struct ToyArgs {
    /// The 2D target distribution.
    #[arg(long, default_value = "two-moons")]
    pub target: String,
    /// Run directory.
    #[arg(long, value_name = "DIR", default_value = "runs/toy2d")]
    pub out: PathBuf,
    /// Redo this stage and every stage after it.
    #[arg(long, value_name = "STAGE")]
    pub force: Option<String>,
    /// No progress bars and no per-stage summary lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `emdesign data ...`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write a GGS benchmark split (or a split of your own CSV) as `sequence,score`.
    Split(SplitArgs),
    /// Download the GGS oracle checkpoints from their pinned commit when absent (SHA-256
    /// checked), then check which data-directory files are present and verified.
    Fetch,
    /// Train emdesign's own oracle for a task on its whole vendored ground truth (GGS CNN
    /// architecture, GGS's predictor recipe, seeded) and write it with a JSON report of its
    /// held-out Spearman and its agreement with the GGS oracle (when the data directory has
    /// it). The shipped `datasets/<task>/oracle_emdesign.safetensors` were made this way.
    TrainOracle(TrainOracleArgs),
}

/// Arguments of `emdesign data train-oracle`.
#[derive(Args, Debug)]
pub struct TrainOracleArgs {
    /// The benchmark task whose ground truth trains the oracle.
    #[arg(long, value_enum)]
    pub task: Task,
    /// Passes over the ground truth.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Seed of the initial weights, the held-out draw and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output safetensors file (a `.json` report is written beside it).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `emdesign data split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The benchmark task (ground truth from the data directory).
    #[arg(long, value_enum, required_unless_present = "input")]
    pub task: Option<Task>,
    /// The split difficulty (percentile window and minimum edits as published).
    #[arg(long, value_enum, required_unless_present = "input")]
    pub difficulty: Option<Difficulty>,
    /// Your own `sequence,score` CSV instead of a task's ground truth.
    #[arg(long, value_name = "FILE", requires_all = ["min_edits", "percentiles"], conflicts_with_all = ["task", "difficulty"])]
    pub input: Option<PathBuf>,
    /// Minimum substitutions from every top-percentile sequence (with `--input`; a task's
    /// difficulty fixes its own).
    #[arg(long, value_name = "N", conflicts_with_all = ["task", "difficulty"])]
    pub min_edits: Option<usize>,
    /// Score percentile window `LO,HI`, inclusive (with `--input`; a task's difficulty fixes
    /// its own).
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', conflicts_with_all = ["task", "difficulty"])]
    pub percentiles: Option<Vec<f64>>,
    /// Output CSV.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// A protein benchmark task.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Green fluorescent protein.
    Gfp,
    /// Adeno-associated virus capsid.
    Aav,
}

/// A GGS split difficulty.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difficulty {
    /// 20th-40th percentile, at least 6 edits from the top.
    Medium,
    /// 0th-30th percentile, at least 7 edits from the top.
    Hard,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn split_with_own_input_needs_edits_and_percentiles() {
        let ok = Cli::try_parse_from([
            "emdesign",
            "data",
            "split",
            "--input",
            "a.csv",
            "--min-edits",
            "6",
            "--percentiles",
            "20,40",
            "--out",
            "b.csv",
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        let bad = Cli::try_parse_from([
            "emdesign", "data", "split", "--input", "a.csv", "--out", "b.csv",
        ]);
        assert!(bad.is_err());
        // See: issue 20: `--min-edits` was silently ignored with `--task`.
        let bad = Cli::try_parse_from([
            "emdesign",
            "data",
            "split",
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "--min-edits",
            "2",
            "--out",
            "b.csv",
        ]);
        assert!(bad.is_err());
    }
}
