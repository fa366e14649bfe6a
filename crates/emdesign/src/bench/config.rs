//! The bench file (`workflows/bench.toml`) as serde structs with unknown fields rejected, and
//! the checked [`BenchPlan`]: methods x tasks x seeds, one predictor-call budget for all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use em_protein::benchmark::Difficulty;
use em_protein::datasets::Task;
use em_protein::ehrlich::EhrlichConfig;
use serde::{Deserialize, Serialize};

/// A design method of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    /// Random mutations of the start population (a floor).
    Random,
    /// AdaLead (Sinai et al. 2020).
    AdaLead,
    /// Gibbs-with-Gradients (Grathwohl et al. 2021).
    Gwg,
    /// OT-CFM prior with the EM predictor guidance.
    OtCfm,
    /// Energy Matching, no interaction.
    Em,
    /// Energy Matching, quadratic interaction.
    EmQuadratic,
    /// Energy Matching, kernel interaction.
    EmKernel,
    /// The same energy trained with the flow (warm-up) loss for all its steps, no
    /// contrastive phase; guided, no interaction (the ablation's "warm-up only" row).
    EmWarmup,
    /// OT-CFM prior, guidance off (zeta = inf); top-k by the predictor.
    OtCfmUnguided,
    /// Energy Matching (with its contrastive phase), guidance off, no interaction.
    EmUnguided,
    /// The warm-up-only energy, guidance off, no interaction.
    EmWarmupUnguided,
}

/// Every method, in table order.
pub const METHODS: [Method; 11] = [
    Method::Random,
    Method::AdaLead,
    Method::Gwg,
    Method::OtCfm,
    Method::Em,
    Method::EmQuadratic,
    Method::EmKernel,
    Method::EmWarmup,
    Method::OtCfmUnguided,
    Method::EmUnguided,
    Method::EmWarmupUnguided,
];

/// The trained prior a sampler method draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    /// The task's energy, trained as its `[energy.train]` says (warm-up, then contrastive).
    Energy,
    /// The same energy trained with the flow loss for all `steps` (no contrastive phase).
    FlowOnlyEnergy,
    /// The OT-CFM vector field.
    OtCfm,
}

impl Method {
    /// Name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Random => "random",
            Method::AdaLead => "adalead",
            Method::Gwg => "gwg",
            Method::OtCfm => "ot-cfm",
            Method::Em => "em",
            Method::EmQuadratic => "em-quadratic",
            Method::EmKernel => "em-kernel",
            Method::EmWarmup => "em-warmup",
            Method::OtCfmUnguided => "ot-cfm-unguided",
            Method::EmUnguided => "em-unguided",
            Method::EmWarmupUnguided => "em-warmup-unguided",
        }
    }

    /// Whether it needs the predictor's input gradient.
    pub fn needs_gradient(self) -> bool {
        !matches!(self, Method::Random | Method::AdaLead)
    }

    /// The trained prior it samples from (`None` for the baselines).
    pub fn prior(self) -> Option<Prior> {
        match self {
            Method::Random | Method::AdaLead | Method::Gwg => None,
            Method::OtCfm | Method::OtCfmUnguided => Some(Prior::OtCfm),
            Method::Em | Method::EmQuadratic | Method::EmKernel | Method::EmUnguided => {
                Some(Prior::Energy)
            }
            Method::EmWarmup | Method::EmWarmupUnguided => Some(Prior::FlowOnlyEnergy),
        }
    }

    /// Whether its sampler follows the predictor's guidance (false: zeta = inf).
    pub fn guided(self) -> bool {
        !matches!(
            self,
            Method::OtCfmUnguided | Method::EmUnguided | Method::EmWarmupUnguided
        )
    }

    fn parse(s: &str) -> Option<Self> {
        METHODS.into_iter().find(|m| m.name() == s)
    }
}

/// The methods whose cells the `t_end` sweep repeats (paper App. A.2: unguided samples of
/// the energy with and without its contrastive phase, run past t = 1).
pub const SWEPT: [Method; 2] = [Method::EmUnguided, Method::EmWarmupUnguided];

/// A table row's method: a method at the design's own `t_end`, or one of the sweep's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    /// The method.
    pub method: Method,
    /// The sweep's `t_end` (replacing `[design] t_end`), if any.
    pub t_end: Option<f64>,
}

impl Variant {
    /// Name in tables and cell files: `em-unguided`, `em-unguided t_end=2`.
    pub fn label(&self) -> String {
        match self.t_end {
            None => self.method.name().to_string(),
            Some(t) => format!("{} t_end={t}", self.method.name()),
        }
    }

    /// The cell file stem: `em-unguided`, `em-unguided_tend2`.
    pub fn file_stem(&self) -> String {
        match self.t_end {
            None => self.method.name().to_string(),
            Some(t) => format!("{}_tend{t}", self.method.name()),
        }
    }
}

/// A bench task: a GGS split, or the data-free Ehrlich function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchTask {
    /// GFP or AAV at a difficulty.
    Protein(Task, Difficulty),
    /// The Ehrlich function of `[ehrlich]`.
    Ehrlich,
}

/// Every task, in table order.
pub const TASKS: [&str; 5] = [
    "gfp-medium",
    "gfp-hard",
    "aav-medium",
    "aav-hard",
    "ehrlich",
];

impl BenchTask {
    /// Name in files and on the command line (`aav-hard`).
    pub fn name(self) -> String {
        match self {
            BenchTask::Protein(t, d) => format!("{}-{}", t.name(), d.name()),
            BenchTask::Ehrlich => "ehrlich".into(),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let (t, d) = match s {
            "ehrlich" => return Some(BenchTask::Ehrlich),
            "gfp-medium" => (Task::Gfp, Difficulty::Medium),
            "gfp-hard" => (Task::Gfp, Difficulty::Hard),
            "aav-medium" => (Task::Aav, Difficulty::Medium),
            "aav-hard" => (Task::Aav, Difficulty::Hard),
            _ => return None,
        };
        Some(BenchTask::Protein(t, d))
    }
}

/// `[bench]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: Option<String>,
    run_dir: Option<String>,
    seed: Option<u64>,
    methods: Option<Vec<String>>,
    tasks: Option<Vec<String>>,
    seeds: Option<Vec<u64>>,
    budget: usize,
    top_k: Option<usize>,
    t_end_sweep: Option<Vec<f64>>,
}

/// `[ot_cfm]`: the shape of the vector field. It trains with the task's own
/// `[energy.train]` optimiser settings (steps, batch size, learning rate, EMA decay), so the
/// energy and the field of a task always train the same number of steps alike.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtCfmSettings {
    /// Hidden channels.
    pub hidden_channels: usize,
    /// Odd kernel width.
    pub kernel: usize,
    /// Hidden blocks.
    pub blocks: usize,
}

impl Default for OtCfmSettings {
    fn default() -> Self {
        Self {
            hidden_channels: 64,
            kernel: 5,
            blocks: 3,
        }
    }
}

/// `[gwg]`: the Gibbs-with-Gradients baseline's sampler settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GwgSettings {
    /// Target and proposal temperature, on the scale of the raw predictor scores.
    pub temperature: f32,
    /// Parallel chains.
    pub chains: usize,
}

impl Default for GwgSettings {
    fn default() -> Self {
        let d = em_protein::baselines::gwg::GibbsWithGradients::default();
        Self {
            temperature: d.temperature,
            chains: d.chains,
        }
    }
}

/// `[ehrlich]`: the function (fields of em-protein's `EhrlichConfig`) and the start population.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EhrlichSettings {
    /// Alphabet size.
    pub vocab: usize,
    /// Sequence length.
    pub length: usize,
    /// Motifs.
    pub motifs: usize,
    /// Motif length.
    pub motif_length: usize,
    /// Quantisation.
    pub quantization: usize,
    /// Seed of the function and the start population.
    pub seed: u64,
    /// Feasible start sequences (the "training split").
    pub n_start: usize,
}

impl Default for EhrlichSettings {
    fn default() -> Self {
        let c = EhrlichConfig::default();
        Self {
            vocab: c.vocab,
            length: c.length,
            motifs: c.motifs,
            motif_length: c.motif_length,
            quantization: c.quantization,
            seed: c.seed,
            n_start: 128,
        }
    }
}

impl EhrlichSettings {
    /// em-protein's config.
    pub fn config(&self) -> EhrlichConfig {
        EhrlichConfig {
            vocab: self.vocab,
            length: self.length,
            motifs: self.motifs,
            motif_length: self.motif_length,
            quantization: self.quantization,
            seed: self.seed,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBench {
    bench: RawHeader,
    #[serde(default)]
    protein: toml::Table,
    /// `[task.<name>]`: per-task tables merged over `[protein]` (e.g. a split's sigma_w).
    #[serde(default)]
    task: BTreeMap<String, toml::Table>,
    #[serde(default)]
    ot_cfm: OtCfmSettings,
    #[serde(default)]
    ehrlich: EhrlichSettings,
    #[serde(default)]
    gwg: GwgSettings,
}

/// A checked bench.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// The bench file.
    pub path: PathBuf,
    /// Name for reports.
    pub name: String,
    /// Where cells, task stages and outputs go.
    pub run_dir: PathBuf,
    /// Seed of the task stages (predictor training, energy training).
    pub seed: u64,
    /// Methods, in table order.
    pub methods: Vec<Method>,
    /// Tasks, in table order.
    pub tasks: Vec<BenchTask>,
    /// Design seeds.
    pub seeds: Vec<u64>,
    /// Predictor calls per cell.
    pub budget: usize,
    /// Designs evaluated per cell (the best by the predictor).
    pub top_k: usize,
    /// `t_end` values at which the [`SWEPT`] methods' cells are repeated (App. A.2).
    pub t_end_sweep: Vec<f64>,
    /// The protein workflow tables (`predictor`, `energy`, `design`, ...) shared by GFP/AAV.
    pub protein: toml::Table,
    /// Per-task tables (`[task.<name>]`), merged key by key over `protein` for that task.
    pub task_overrides: BTreeMap<String, toml::Table>,
    /// OT-CFM settings.
    pub ot_cfm: OtCfmSettings,
    /// Ehrlich settings.
    pub ehrlich: EhrlichSettings,
    /// Gibbs-with-Gradients settings.
    pub gwg: GwgSettings,
}

/// Narrowing from the command line.
#[derive(Debug, Default)]
pub struct Overrides {
    /// `--methods`.
    pub methods: Option<Vec<String>>,
    /// `--tasks`.
    pub tasks: Option<Vec<String>>,
    /// `--seeds`.
    pub seeds: Option<Vec<u64>>,
    /// `--run-dir`.
    pub run_dir: Option<PathBuf>,
}

fn pick<T>(
    names: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<Vec<T>> {
    if names.is_empty() {
        bail!("{what}: needs at least one");
    }
    names
        .iter()
        .map(|n| {
            parse(n.trim()).with_context(|| {
                format!(
                    "{what}: unknown `{n}`, expected one of {}",
                    allowed.join(", ")
                )
            })
        })
        .collect()
}

/// Protein workflow tables must be one of the protein workflow's tables.
fn check_protein_tables(tables: &toml::Table, prefix: &str, path: &Path) -> Result<()> {
    for key in tables.keys() {
        if !PROTEIN_TABLES.contains(&key.as_str()) {
            bail!(
                "{}: field `{prefix}.{key}`: unknown table, expected one of {}",
                path.display(),
                PROTEIN_TABLES.join(", ")
            );
        }
    }
    Ok(())
}

/// The protein workflow tables a bench may set.
const PROTEIN_TABLES: [&str; 5] = ["predictor", "energy", "design", "evaluate", "report"];

/// `over` merged into `base`: tables recursively, any other value replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

impl BenchPlan {
    /// The table rows' methods: every method at the design's `t_end`, then the [`SWEPT`]
    /// methods of the plan at each sweep `t_end`.
    pub fn variants(&self) -> Vec<Variant> {
        let mut out: Vec<Variant> = self
            .methods
            .iter()
            .map(|&method| Variant {
                method,
                t_end: None,
            })
            .collect();
        for &t in &self.t_end_sweep {
            for &method in self.methods.iter().filter(|m| SWEPT.contains(m)) {
                out.push(Variant {
                    method,
                    t_end: Some(t),
                });
            }
        }
        out
    }

    /// The protein workflow tables of the task named `task`: `[protein]` with its
    /// `[task.<task>]` overrides merged in.
    pub fn protein_tables(&self, task: &str) -> toml::Table {
        let mut tables = self.protein.clone();
        if let Some(over) = self.task_overrides.get(task) {
            merge(&mut tables, over);
        }
        tables
    }
}

/// Reads and checks a bench file, applying the command line's narrowing.
pub fn load(path: &Path, o: &Overrides) -> Result<BenchPlan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read bench file {}", path.display()))?;
    let raw: RawBench =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let h = raw.bench;
    let ctx = |field: &str| format!("{}: field `bench.{field}`", path.display());
    let method_names: Vec<&str> = METHODS.iter().map(|m| m.name()).collect();
    let methods = o
        .methods
        .clone()
        .or(h.methods)
        .unwrap_or_else(|| method_names.iter().map(|s| s.to_string()).collect());
    let methods =
        pick(&methods, "methods", Method::parse, &method_names).context(ctx("methods"))?;
    let tasks = o
        .tasks
        .clone()
        .or(h.tasks)
        .unwrap_or_else(|| TASKS.iter().map(|s| s.to_string()).collect());
    let tasks = pick(&tasks, "tasks", BenchTask::parse, &TASKS).context(ctx("tasks"))?;
    let seeds = o.seeds.clone().or(h.seeds).unwrap_or(vec![0, 1, 2, 3, 4]);
    if seeds.is_empty() {
        bail!("{}: needs at least one seed", ctx("seeds"));
    }
    if h.budget == 0 {
        bail!("{}: must be >= 1 predictor call", ctx("budget"));
    }
    let top_k = h.top_k.unwrap_or(128);
    if top_k == 0 {
        bail!("{}: must be >= 1", ctx("top_k"));
    }
    let t_end_sweep = h.t_end_sweep.unwrap_or_default();
    if let Some(t) = t_end_sweep.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        bail!(
            "{}: {t}: every t_end must be finite and > 0",
            ctx("t_end_sweep")
        );
    }
    // A file that sweeps without a swept method is a mistake; a command line that narrows
    // the methods to others simply runs no sweep cells.
    if !t_end_sweep.is_empty() && o.methods.is_none() && !methods.iter().any(|m| SWEPT.contains(m))
    {
        bail!(
            "{}: sweeps only {} cells, and bench.methods has neither",
            ctx("t_end_sweep"),
            SWEPT.map(Method::name).join(" / ")
        );
    }
    check_protein_tables(&raw.protein, "protein", path)?;
    for (name, table) in &raw.task {
        if !matches!(BenchTask::parse(name), Some(BenchTask::Protein(..))) {
            let protein: Vec<_> = TASKS.iter().filter(|&&t| t != "ehrlich").copied().collect();
            bail!(
                "{}: field `task.{name}`: unknown protein task, expected one of {}",
                path.display(),
                protein.join(", ")
            );
        }
        check_protein_tables(table, &format!("task.{name}"), path)?;
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let run_dir = match &o.run_dir {
        Some(d) => d.clone(),
        None => base.join(h.run_dir.as_deref().unwrap_or("runs/bench")),
    };
    Ok(BenchPlan {
        path: path.to_path_buf(),
        name: h.name.unwrap_or_else(|| "bench".into()),
        run_dir,
        seed: h.seed.unwrap_or(0),
        methods,
        tasks,
        seeds,
        budget: h.budget,
        top_k,
        t_end_sweep,
        protein: raw.protein,
        task_overrides: raw.task,
        ot_cfm: raw.ot_cfm,
        ehrlich: raw.ehrlich,
        gwg: raw.gwg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn task_tables_merge_over_protein_key_by_key() {
        let (_d, p) = write(
            "[bench]\nbudget = 1\n[protein.design]\nzeta = 0.01\nsigma_w = 11.0\n\
             [task.gfp-hard.design]\nsigma_w = 3.0\n[task.gfp-hard.energy]\nblocks = 1\n",
        );
        let plan = load(&p, &Overrides::default()).unwrap();
        let gfp = plan.protein_tables("gfp-hard");
        assert_eq!(gfp["design"]["sigma_w"].as_float(), Some(3.0));
        assert_eq!(gfp["design"]["zeta"].as_float(), Some(0.01));
        assert_eq!(gfp["energy"]["blocks"].as_integer(), Some(1));
        let aav = plan.protein_tables("aav-hard");
        assert_eq!(aav["design"]["sigma_w"].as_float(), Some(11.0));
        assert!(aav.get("energy").is_none());
    }

    #[test]
    fn defaults_narrowing_and_errors() {
        let (_d, p) = write("[bench]\nbudget = 100\n[protein.design]\nt_end = 1.0\n");
        let plan = load(&p, &Overrides::default()).unwrap();
        assert_eq!((plan.methods.len(), plan.tasks.len()), (METHODS.len(), 5));
        assert_eq!(plan.variants().len(), METHODS.len());
        assert_eq!(plan.seeds, [0, 1, 2, 3, 4]);
        let o = Overrides {
            methods: Some(vec!["gwg".into(), "em-kernel".into()]),
            tasks: Some(vec!["ehrlich".into()]),
            ..Default::default()
        };
        let plan = load(&p, &o).unwrap();
        assert_eq!(plan.methods, [Method::Gwg, Method::EmKernel]);
        assert_eq!(plan.tasks, [BenchTask::Ehrlich]);
        let bad = Overrides {
            tasks: Some(vec!["tem1".into()]),
            ..Default::default()
        };
        let e = format!("{:#}", load(&p, &bad).unwrap_err());
        assert!(
            e.contains("bench.tasks") && e.contains("unknown `tem1`"),
            "{e}"
        );
        let (_d, p) = write(
            "[bench]\nbudget = 1\nmethods = [\"em\", \"em-unguided\"]\nt_end_sweep = [1.0, 2.5]\n",
        );
        let labels: Vec<String> = load(&p, &Overrides::default())
            .unwrap()
            .variants()
            .iter()
            .map(Variant::label)
            .collect();
        assert_eq!(
            labels,
            [
                "em",
                "em-unguided",
                "em-unguided t_end=1",
                "em-unguided t_end=2.5"
            ]
        );
        let (_d, p) = write("[bench]\nbudget = 1\nmethods = [\"em\"]\nt_end_sweep = [2.0]\n");
        let e = format!("{:#}", load(&p, &Overrides::default()).unwrap_err());
        assert!(e.contains("bench.t_end_sweep"), "{e}");
        let (_d, p) = write("[bench]\nbudget = 1\nt_end_sweep = [0.0]\n");
        assert!(load(&p, &Overrides::default()).is_err());
        let (_d, p) = write("[bench]\nbudget = 1\nbudgte = 2\n");
        assert!(load(&p, &Overrides::default()).is_err());
        let (_d, p) = write("[bench]\nbudget = 1\n[task.tem1.design]\nsigma_w = 2.0\n");
        let e = format!("{:#}", load(&p, &Overrides::default()).unwrap_err());
        assert!(e.contains("task.tem1"), "{e}");
        let (_d, p) = write("[bench]\nbudget = 1\n[task.gfp-hard.desing]\nsigma_w = 2.0\n");
        let e = format!("{:#}", load(&p, &Overrides::default()).unwrap_err());
        assert!(e.contains("task.gfp-hard.desing"), "{e}");
    }
}
