//! One bench cell (method, task, seed): design under the budget, evaluate the top-k with the
//! task's oracle, and write the result atomically as `cells/<task>/<method>_seed<k>.json`
//! with its key, so a rerun skips it when nothing it depends on changed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_protein::baselines::adalead::AdaLead;
use em_protein::baselines::gwg::GibbsWithGradients;
use em_protein::baselines::ot_cfm::design_ot_cfm;
use em_protein::baselines::random::RandomMutation;
use em_protein::baselines::{DesignMethod, Predictor};
use em_protein::design::{Interaction, design, evaluate};
use em_protein::oracle::Oracle;
use em_protein::sequence::Sequence;
use serde::{Deserialize, Serialize};

use super::config::{BenchPlan, Method, Prior, Variant};
use super::tasks::{FLOW_ONLY_STAGE, TaskEnv, TaskKind, variant_config};
use crate::progress::Progress;
use crate::stage::cache::{self, Key};
use crate::workflow::protein::Design;

/// A finished cell; metrics are `None` for an n/a cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Key of its inputs; a cell with another key is redone.
    pub key: String,
    /// Method name, with the sweep's `t_end` if any (`em-unguided t_end=2`).
    pub method: String,
    /// The sweep's `t_end`, if the cell is one of the sweep's.
    #[serde(default)]
    pub t_end: Option<f64>,
    /// Task name.
    pub task: String,
    /// Design seed.
    pub seed: u64,
    /// Why it did not run (`n/a (not differentiable)`), if so.
    pub note: Option<String>,
    /// GGS fitness (median normalised oracle score of the designs).
    pub fitness: Option<f64>,
    /// Mean pairwise Levenshtein distance of the designs.
    pub diversity: Option<f64>,
    /// Median distance to the training split / start population.
    pub novelty: Option<f64>,
    /// Designs evaluated (at most top_k).
    pub n_designs: usize,
    /// Predictor calls spent.
    pub calls: usize,
    /// Seconds spent designing and evaluating.
    pub wall_secs: f64,
}

/// Where a cell's file lives.
pub fn cell_path(run_dir: &Path, task: &str, variant: Variant, seed: u64) -> PathBuf {
    run_dir
        .join("cells")
        .join(task)
        .join(format!("{}_seed{seed}.json", variant.file_stem()))
}

/// The key of a cell: method, task, seed, budget, top_k and the task's upstream keys that
/// the method reads (the energy stage only for the methods that sample it, the warm-up-only
/// energy likewise, so a baseline cell keeps its key whether or not the invocation trained
/// an energy).
pub fn cell_key(
    plan: &BenchPlan,
    env: &TaskEnv,
    variant: Variant,
    seed: u64,
    extra: &[(String, Key)],
) -> Result<Key> {
    let method = variant.method;
    let prior = method.prior();
    let mut upstream: Vec<(String, Key)> = env
        .upstream
        .iter()
        .filter(|(stage, _)| match stage.as_str() {
            "energy" => prior == Some(Prior::Energy),
            FLOW_ONLY_STAGE => prior == Some(Prior::FlowOnlyEnergy),
            _ => true,
        })
        .cloned()
        .collect();
    upstream.extend_from_slice(extra);
    let mut config = serde_json::json!({
        "method": method.name(), "task": env.name, "seed": seed,
        "budget": plan.budget, "top_k": plan.top_k,
    });
    if let Some(t) = variant.t_end {
        config["t_end"] = t.into();
    }
    // The method's own settings, for the methods that have any (a changed sigma_W or
    // temperature must not reuse old cells).
    let settings = match (&env.kind, prior) {
        (_, None) if method == Method::Gwg => Some(serde_json::to_value(&plan.gwg)?),
        (TaskKind::Protein(p), Some(_)) => {
            let mut design = p.design.clone();
            if let Some(t) = variant.t_end {
                design.t_end = t;
            }
            Some(sampler_settings(&design, method)?)
        }
        _ => None,
    };
    if let Some(s) = settings {
        config["settings"] = s;
    }
    cache::fingerprint("bench.cell", &config, &[], &upstream)
}

/// The `[design]` fields a sampler cell of `method` reads: the interaction width only for
/// the method that uses it, and none of the fields the bench replaces (chains, seeds, top-k,
/// the interaction choice, the ablation switch). So a changed kernel width reruns only the
/// `em-kernel` cells.
pub fn sampler_settings(design: &Design, method: Method) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(design)?;
    let fields = v.as_object_mut().context("[design] is not a table")?;
    for unused in ["n_samples", "seeds", "top_k", "interaction", "ablation"] {
        fields.remove(unused);
    }
    if method != Method::EmQuadratic {
        fields.remove("sigma_w");
    }
    if method != Method::EmKernel {
        fields.remove("kernel_sigma_w");
    } else {
        fields.insert("kernel_sigma_w".into(), design.kernel_sigma_w().into());
    }
    if !method.guided() {
        // Guidance is off: its width and the predictor's input temperature are not read.
        fields.remove("zeta");
        fields.remove("temperature");
        fields.insert("guided".into(), false.into());
    }
    Ok(v)
}

/// The finished cell at `path` if its key is `key`.
pub fn finished(path: &Path, key: &Key) -> Option<Cell> {
    let text = std::fs::read_to_string(path).ok()?;
    let cell: Cell = serde_json::from_str(&text).ok()?;
    (cell.key == key.0).then_some(cell)
}

/// Runs one cell unless its file is finished under the same key; returns the cell and
/// whether it ran.
pub fn run(
    plan: &BenchPlan,
    env: &mut TaskEnv,
    variant: Variant,
    seed: u64,
    progress: &Progress,
) -> Result<(Cell, bool)> {
    let method = variant.method;
    let extra = match method.prior() {
        Some(Prior::OtCfm) if matches!(env.kind, TaskKind::Protein(_)) => {
            vec![("ot_cfm".to_string(), env.ot_cfm(plan, progress)?.1)]
        }
        _ => Vec::new(),
    };
    let key = cell_key(plan, env, variant, seed, &extra)?;
    let path = cell_path(&plan.run_dir, &env.name, variant, seed);
    if let Some(cell) = finished(&path, &key) {
        return Ok((cell, false));
    }
    let start = Instant::now();
    let mut cell = Cell {
        key: key.0.clone(),
        method: variant.label(),
        t_end: variant.t_end,
        task: env.name.clone(),
        seed,
        note: None,
        fitness: None,
        diversity: None,
        novelty: None,
        n_designs: 0,
        calls: 0,
        wall_secs: 0.0,
    };
    let designed = design_cell(plan, env, variant, seed, progress)
        .with_context(|| format!("{} on {} seed {seed}", variant.label(), env.name))?;
    match designed {
        None => cell.note = Some("n/a (not differentiable)".into()),
        Some((designs, calls)) => {
            let oracle: &dyn Oracle = match &env.kind {
                TaskKind::Protein(p) => &p.oracle,
                TaskKind::Ehrlich(f) => f,
            };
            let e = evaluate(&designs, oracle, &env.training, env.min_gt, env.max_gt);
            let finite = |v: f64| v.is_finite().then_some(v);
            cell.fitness = finite(e.fitness);
            cell.diversity = finite(e.diversity);
            cell.novelty = finite(e.novelty);
            cell.n_designs = designs.len();
            cell.calls = calls;
        }
    }
    cell.wall_secs = start.elapsed().as_secs_f64();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    cache::write_atomic(&path, serde_json::to_string_pretty(&cell)?.as_bytes())?;
    Ok((cell, true))
}

/// The top-k designs and the predictor calls spent, or `None` when the method cannot run on
/// the task (a gradient method on the black-box Ehrlich function).
fn design_cell(
    plan: &BenchPlan,
    env: &mut TaskEnv,
    variant: Variant,
    seed: u64,
    progress: &Progress,
) -> Result<Option<(Vec<Sequence>, usize)>> {
    let method = variant.method;
    let baseline: Option<Box<dyn DesignMethod>> = match method {
        Method::Random => Some(Box::new(RandomMutation::default())),
        Method::AdaLead => Some(Box::new(AdaLead::default())),
        Method::Gwg => Some(Box::new(GibbsWithGradients {
            temperature: plan.gwg.temperature,
            chains: plan.gwg.chains,
        })),
        _ => None,
    };
    if let Some(m) = baseline {
        let predictor: &dyn Predictor = match &env.kind {
            TaskKind::Protein(p) => &p.predictor,
            TaskKind::Ehrlich(f) => f,
        };
        if method.needs_gradient() && matches!(env.kind, TaskKind::Ehrlich(_)) {
            return Ok(None);
        }
        let d = m.run(&env.start, predictor, plan.budget, seed)?;
        let top = d
            .top(plan.top_k)
            .iter()
            .map(|s| Sequence::from_indices(s.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some((top, d.calls)));
    }
    if matches!(env.kind, TaskKind::Ehrlich(_)) {
        return Ok(None);
    }
    // Only protein tasks reach here (Ehrlich returned above). The field is trained (or
    // loaded) first, while `env` may still be borrowed mutably.
    let field = if method.prior() == Some(Prior::OtCfm) {
        Some(env.ot_cfm(plan, progress)?.0.clone())
    } else {
        None
    };
    let TaskKind::Protein(p) = &env.kind else {
        return Ok(None);
    };
    let device = Device::flex();
    let (min_gt, max_gt) = (env.min_gt, env.max_gt);
    let interaction = match method {
        Method::EmQuadratic => Interaction::Quadratic {
            sigma_w: p.design.sigma_w,
        },
        Method::EmKernel => Interaction::Kernel {
            sigma_w: p.design.kernel_sigma_w(),
        },
        _ => Interaction::None,
    };
    let cfg = variant_config(&p.design, variant, interaction, plan.budget, plan.top_k)?;
    let batch = match &field {
        Some(field) => design_ot_cfm(field, &p.predictor, min_gt, max_gt, &cfg, seed, &device)?,
        None => {
            let potential = match method.prior() {
                Some(Prior::FlowOnlyEnergy) => p.flow_only.as_ref(),
                _ => p.potential.as_ref(),
            }
            .with_context(|| format!("the energy of {} was not trained", method.name()))?;
            design(potential, &p.predictor, min_gt, max_gt, &cfg, seed, &device)?
        }
    };
    // One guidance gradient per chain and step (guided methods), one final score per unique
    // design.
    let guided_calls = if method.guided() {
        batch.n_samples * cfg.steps()
    } else {
        0
    };
    let calls = guided_calls + batch.n_unique;
    Ok(Some((batch.sequences, calls)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::{BenchTask, METHODS, Overrides, load};
    use crate::bench::tasks::{Needs, prepare};

    #[test]
    fn sampler_settings_hold_only_what_each_method_reads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/bench.toml");
        let plan = load(&path, &Overrides::default()).unwrap();
        let task = *plan.tasks.iter().find(|t| t.name() == "gfp-hard").unwrap();
        let design = crate::bench::tasks::protein_plan(&plan, task, path.parent().unwrap())
            .unwrap()
            .design;
        let mut wider = design.clone();
        wider.kernel_sigma_w = Some(0.5);
        let mut sharper = design.clone();
        sharper.sigma_w = 1.0;
        let mut hotter = design.clone();
        hotter.zeta = 0.02;
        let s = |d: &Design, m| sampler_settings(d, m).unwrap();
        for m in [
            Method::OtCfm,
            Method::Em,
            Method::EmQuadratic,
            Method::EmKernel,
        ] {
            assert_eq!(
                s(&wider, m) == s(&design, m),
                m != Method::EmKernel,
                "{}",
                m.name()
            );
            assert_eq!(
                s(&sharper, m) == s(&design, m),
                m != Method::EmQuadratic,
                "{}",
                m.name()
            );
            assert_ne!(s(&hotter, m), s(&design, m), "{}", m.name());
        }
        assert_eq!(s(&design, Method::EmKernel)["kernel_sigma_w"], 0.02);
        // Unguided cells do not read the guidance width.
        for m in [
            Method::OtCfmUnguided,
            Method::EmUnguided,
            Method::EmWarmupUnguided,
        ] {
            assert_eq!(s(&hotter, m), s(&design, m), "{}", m.name());
            assert_eq!(s(&design, m)["guided"], false, "{}", m.name());
        }
        assert!(s(&design, Method::Em).get("n_samples").is_none());
    }

    #[test]
    fn only_em_cell_keys_follow_the_energy_stage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "[bench]\nbudget = 64\n[ehrlich]\nlength = 16\nn_start = 8\n",
        )
        .unwrap();
        let plan = load(&path, &Overrides::default()).unwrap();
        let progress = Progress::new(true);
        let none = Needs::default();
        let without = prepare(&plan, BenchTask::Ehrlich, none, None, &progress).unwrap();
        let mut with = prepare(&plan, BenchTask::Ehrlich, none, None, &progress).unwrap();
        with.upstream.push(("energy".into(), Key("e".repeat(64))));
        let mut flow = prepare(&plan, BenchTask::Ehrlich, none, None, &progress).unwrap();
        flow.upstream
            .push((FLOW_ONLY_STAGE.into(), Key("f".repeat(64))));
        let key = |env: &TaskEnv, method| {
            cell_key(
                &plan,
                env,
                Variant {
                    method,
                    t_end: None,
                },
                0,
                &[],
            )
            .unwrap()
        };
        for m in METHODS {
            let reads_energy = m.prior() == Some(Prior::Energy);
            let reads_flow_only = m.prior() == Some(Prior::FlowOnlyEnergy);
            assert_eq!(
                key(&without, m) != key(&with, m),
                reads_energy,
                "{}",
                m.name()
            );
            assert_eq!(
                key(&without, m) != key(&flow, m),
                reads_flow_only,
                "{}",
                m.name()
            );
        }
        // A sweep cell has its own key.
        let swept = Variant {
            method: Method::EmUnguided,
            t_end: Some(2.0),
        };
        assert_ne!(
            cell_key(&plan, &with, swept, 0, &[]).unwrap(),
            key(&with, Method::EmUnguided)
        );
    }
}
