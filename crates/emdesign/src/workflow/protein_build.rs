//! Checking a `kind = "protein"` workflow: the raw TOML becomes [`super::protein::Protein`]
//! with defaults filled (the design issue's: 512 samples, 5 seeds, top 128, t_end / sigma_w
//! by difficulty) and every value range-checked, errors naming file, line and field.

use std::path::Path;

use anyhow::Result;
use em_core::loss::NegativeInit;
use em_core::train::ema_decay_for_steps;
use em_protein::benchmark::Difficulty;
use em_protein::datasets::Task;
use em_protein::energy_model::{EnergyNetConfig, ReadoutName};
use em_protein::gfp_splits::GfpSplit;
use em_protein::predictor::TrainPredictorConfig;
use toml::Spanned;

use super::Source;
use super::plan::{Body, Check, Plan, header};
use super::protein::{
    Data, Design, Evaluate, OwnData, Predictor, Protein, ProteinData, ProteinEnergy, ProteinReport,
};
use super::raw_protein::{RawProtein, RawProteinData};
use super::toy2d::{Train, check_train};

/// The trainer defaults for proteins. From the paper / official protein code
/// (m1balcerak/EnergyMatching `experiments/proteins/config.py`, `train_proteins.py`):
/// lambda_cd 1e-4, eps_max 0.1, tau_star 0.9 (`time_cutoff`), negatives 200 x 0.01
/// (`n_gibbs`, `dt_gibbs`; paper App. D, AAV), all chains from data (`negatives = "data"`),
/// batch 128. Ours (CPU budget): steps, warm-up, lr, EMA, checkpoint period.
const PROTEIN_TRAIN: Train = Train {
    steps: 3000,
    warmup_steps: 2000,
    batch_size: 128,
    lr: 1e-3,
    lambda_cd: 1e-4,
    eps_max: 0.1,
    tau_star: 0.9,
    langevin_steps: 200,
    langevin_dt: 0.01,
    negatives: NegativeInit::Data,
    allow_short_negatives: false,
    ema_decay: 0.999,
    checkpoint_every: 250,
};

fn choice(
    src: &Source,
    field: &str,
    v: &Option<Spanned<String>>,
    default: &str,
    allowed: &[&str],
) -> Result<String> {
    let Some(v) = v else {
        return Ok(default.into());
    };
    let s = v.get_ref().to_ascii_lowercase();
    if allowed.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(src.error_at(
            v.span(),
            field,
            format!(
                "unknown value `{}`, expected one of {}",
                v.get_ref(),
                allowed.join(", ")
            ),
        ))
    }
}

/// `[data]` of a benchmark task.
fn benchmark_data(src: &Source, d: &RawProteinData) -> Result<ProteinData> {
    if d.file.is_some() {
        return Err(src.error_at(
            key_span(src, "data.file", None),
            "data.file",
            "only used with source = \"file\"",
        ));
    }
    let need = |v: &Option<Spanned<String>>, field: &str| {
        v.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: field `{field}` is missing (a benchmark task needs `task` and \
                 `difficulty`; for your own data set `source = \"file\"`)",
                src.path.display()
            )
        })
    };
    let task = choice(
        src,
        "data.task",
        &Some(need(&d.task, "data.task")?),
        "",
        &["gfp", "aav"],
    )?;
    let diff = choice(
        src,
        "data.difficulty",
        &Some(need(&d.difficulty, "data.difficulty")?),
        "",
        &["medium", "hard"],
    )?;
    let hard = diff == "hard";
    let gfp_split = if task == "gfp" {
        let names = GfpSplit::ALL.map(GfpSplit::name);
        let name = choice(
            src,
            "data.gfp_split",
            &d.gfp_split,
            GfpSplit::default().name(),
            &names,
        )?;
        GfpSplit::from_name(&name)
    } else {
        if let Some(s) = &d.gfp_split {
            return Err(src.error_at(
                s.span(),
                "data.gfp_split",
                "only used with task = \"gfp\" (the AAV split is always rebuilt: it gives GGS's own)",
            ));
        }
        None
    };
    Ok(ProteinData {
        task: if task == "gfp" { Task::Gfp } else { Task::Aav },
        difficulty: if hard {
            Difficulty::Hard
        } else {
            Difficulty::Medium
        },
        gfp_split,
    })
}

/// `[data]` with `source = "file"`: the user's data set, read and checked now so that a bad
/// file fails before any stage runs.
fn own_data(src: &Source, d: &RawProteinData) -> Result<OwnData> {
    for (name, v) in [
        ("task", &d.task),
        ("difficulty", &d.difficulty),
        ("gfp_split", &d.gfp_split),
    ] {
        if let Some(v) = v {
            return Err(src.error_at(
                v.span(),
                &format!("data.{name}"),
                "only used with a benchmark task (not with source = \"file\")",
            ));
        }
    }
    let Some(file) = &d.file else {
        return Err(src.error_at(
            d.source.as_ref().map_or(0..0, Spanned::span),
            "data.file",
            "source = \"file\" needs a `[data.file]` table (`sequences = \"my.csv\"`, or \
             `wild_type` + `mutations`)",
        ));
    };
    let base = src.path.parent().unwrap_or(Path::new("."));
    let file = file.resolved(base);
    let located = |e: em_protein::error::Error| match &e {
        em_protein::error::Error::InvalidSetting { field, .. } => {
            let key = field.rsplit('.').next().unwrap_or("");
            let (line, col) = src.line_col(key_span(src, "data.file", Some(key)).start);
            anyhow::anyhow!("{}:{line}:{col}: {e}", src.path.display())
        }
        _ => anyhow::anyhow!("{e}"),
    };
    let data = em_protein::user_data::load(&file).map_err(located)?;
    Ok(OwnData {
        source: "file",
        length: data.table.length(),
        rows: data.table.len(),
        wild_type: data.wild_type,
        file,
    })
}

/// Span of `key = ...` in the `[table]` of the workflow text (of the table header without a
/// key; of the file's start when absent), for errors about settings deserialised without spans.
pub(super) fn key_span(src: &Source, table: &str, key: Option<&str>) -> std::ops::Range<usize> {
    let mut in_table = false;
    let mut offset = 0;
    for line in src.text.split_inclusive('\n') {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.starts_with('[') {
            in_table = t.trim_matches(|c| c == '[' || c == ']').trim() == table;
            if in_table && key.is_none() {
                return offset..offset + t.len();
            }
        } else if in_table
            && let Some(k) = key
            && let Some((name, _)) = t.split_once('=')
            && name.trim().trim_matches('"') == k
        {
            let start = offset + (line.len() - line.trim_start().len());
            return start..start + t.len();
        }
        offset += line.len();
    }
    0..0
}

pub(crate) fn build(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let raw: RawProtein = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let c = Check { src };
    let workflow = header(src, &raw.workflow, run_dir)?;
    let d = &raw.data;
    let source = choice(
        src,
        "data.source",
        &d.source,
        "benchmark",
        &["benchmark", "file"],
    )?;
    let data = if source == "file" {
        Data::File(Box::new(own_data(src, d)?))
    } else {
        Data::Benchmark(benchmark_data(src, d)?)
    };
    let hard = matches!(
        data,
        Data::Benchmark(ProteinData {
            difficulty: Difficulty::Hard,
            ..
        })
    );

    let p = &raw.predictor;
    let own = match &data {
        Data::File(f) => Some(f),
        Data::Benchmark(_) => None,
    };
    // Own data has no published predictor: it is always trained here.
    let default_source = if own.is_some() { "train" } else { "ggs" };
    let source = choice(
        src,
        "predictor.source",
        &p.source,
        default_source,
        &["ggs", "train"],
    )?;
    if let (Some(_), Some(s)) = (own, &p.source)
        && source == "ggs"
    {
        return Err(src.error_at(
            s.span(),
            "predictor.source",
            "GGS predictors exist only for the benchmark tasks; your own data needs \
             source = \"train\"",
        ));
    }
    // (A resolved workflow writes the count `data.file.holdout` gave; that one is accepted.)
    if let (Some(f), Some(v)) = (own, &p.val_samples)
        && *v.get_ref() != f.file.holdout_rows(f.rows) as i64
    {
        return Err(src.error_at(
            v.span(),
            "predictor.val_samples",
            "with your own data the held-out rows are `data.file.holdout` (a fraction)",
        ));
    }
    let predictor = if source == "ggs" {
        let train_only = [
            ("epochs", p.epochs.as_ref().map(Spanned::span)),
            ("batch_size", p.batch_size.as_ref().map(Spanned::span)),
            ("learning_rate", p.learning_rate.as_ref().map(Spanned::span)),
            ("val_samples", p.val_samples.as_ref().map(Spanned::span)),
            ("channels", p.channels.as_ref().map(Spanned::span)),
            ("kernel_size", p.kernel_size.as_ref().map(Spanned::span)),
            ("ensemble", p.ensemble.as_ref().map(Spanned::span)),
        ];
        if let Some((name, Some(span))) = train_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(src.error_at(
                span,
                &format!("predictor.{name}"),
                "only used with source = \"train\"",
            ));
        }
        Predictor::Ggs {
            smoothed: p.smoothed.as_ref().map_or(hard, |s| *s.get_ref()),
        }
    } else {
        if let Some(s) = &p.smoothed {
            return Err(src.error_at(
                s.span(),
                "predictor.smoothed",
                "only used with source = \"ggs\"",
            ));
        }
        let dflt = TrainPredictorConfig::default();
        Predictor::Train {
            epochs: c.int("predictor.epochs", &p.epochs, dflt.epochs, 1, 100_000)?,
            batch_size: c.int(
                "predictor.batch_size",
                &p.batch_size,
                dflt.batch_size,
                1,
                1_000_000,
            )?,
            learning_rate: c.float(
                "predictor.learning_rate",
                &p.learning_rate,
                dflt.learning_rate,
                0.0,
                1.0,
                true,
            )?,
            val_samples: match own {
                Some(f) => f.file.holdout_rows(f.rows),
                None => c.int(
                    "predictor.val_samples",
                    &p.val_samples,
                    dflt.val_samples,
                    0,
                    1_000_000,
                )?,
            },
            channels: c.int("predictor.channels", &p.channels, dflt.channels, 1, 4096)?,
            kernel_size: c.int(
                "predictor.kernel_size",
                &p.kernel_size,
                dflt.kernel_size,
                1,
                27,
            )?,
            ensemble: c.int("predictor.ensemble", &p.ensemble, 1, 1, 64)?,
        }
    };

    let e = &raw.energy;
    let net = EnergyNetConfig::default();
    let kernel = c.int("energy.kernel", &e.kernel, net.kernel, 1, 27)?;
    if kernel.is_multiple_of(2)
        && let Some(k) = &e.kernel
    {
        return Err(src.error_at(
            k.span(),
            "energy.kernel",
            format!("must be odd, got {kernel}"),
        ));
    }
    let energy = ProteinEnergy {
        hidden_channels: c.int(
            "energy.hidden_channels",
            &e.hidden_channels,
            net.hidden_channels,
            1,
            4096,
        )?,
        kernel,
        blocks: c.int("energy.blocks", &e.blocks, net.blocks, 0, 64)?,
        head_hidden: c.int(
            "energy.head_hidden",
            &e.head_hidden,
            net.head_hidden,
            1,
            4096,
        )?,
        activation: choice(
            src,
            "energy.activation",
            &e.activation,
            "silu",
            &["silu", "softplus", "tanh", "gelu_tanh"],
        )?,
        readout: choice(
            src,
            "energy.readout",
            &e.readout,
            net.readout.name(),
            &ReadoutName::ALL.map(ReadoutName::name),
        )?,
        output_scale: c.float(
            "energy.output_scale",
            &e.output_scale,
            net.output_scale,
            0.0,
            1e9,
            true,
        )?,
        confinement: c.float("energy.confinement", &e.confinement, 0.0, 0.0, 1e6, false)?,
        train: {
            let mut train = check_train(&c, &e.train, &PROTEIN_TRAIN, |steps| steps * 2 / 3)?;
            if e.train.ema_decay.is_none() {
                train.ema_decay = ema_decay_for_steps(train.steps as u64);
            }
            train
        },
    };

    let s = &raw.design;
    let seeds = match &s.seeds {
        None => vec![0, 1, 2, 3, 4],
        Some(v) => {
            if v.get_ref().is_empty() || v.get_ref().iter().any(|&x| x < 0) {
                return Err(src.error_at(
                    v.span(),
                    "design.seeds",
                    "needs at least one seed, each >= 0",
                ));
            }
            let seeds: Vec<u64> = v.get_ref().iter().map(|&x| x as u64).collect();
            // Repeated seeds would repeat whole batches (and their design ids).
            if let Some(d) = seeds
                .iter()
                .enumerate()
                .find(|(i, x)| seeds[..*i].contains(x))
            {
                return Err(src.error_at(
                    v.span(),
                    "design.seeds",
                    format!("seed {} is listed twice; each seed must be distinct", d.1),
                ));
            }
            seeds
        }
    };
    let clamp = match &s.clamp {
        None => [-1.0, 1.0],
        Some(v) => match v.get_ref().as_slice() {
            &[lo, hi] if lo.is_finite() && hi.is_finite() && lo < hi => [lo, hi],
            other => {
                return Err(src.error_at(
                    v.span(),
                    "design.clamp",
                    format!("need [lo, hi] with finite lo < hi, got {other:?}"),
                ));
            }
        },
    };
    let zeta = match &s.zeta {
        Some(z) if z.get_ref().is_infinite() && *z.get_ref() > 0.0 => f64::INFINITY,
        z => c.float("design.zeta", z, 0.01, 0.0, 1e6, true)?,
    };
    let mut design = Design {
        n_samples: c.int("design.n_samples", &s.n_samples, 512, 1, 1_000_000)?,
        seeds,
        dt: c.float("design.dt", &s.dt, 0.01, 0.0, 10.0, true)?,
        t_end: c.float(
            "design.t_end",
            &s.t_end,
            if hard { 1.3 } else { 1.7 },
            0.0,
            1e4,
            true,
        )?,
        zeta,
        eps_max: c.float("design.eps_max", &s.eps_max, 0.1, 0.0, 100.0, false)?,
        tau_star: c.float("design.tau_star", &s.tau_star, 0.5, 0.0, 0.999_999, false)?,
        interaction: choice(
            src,
            "design.interaction",
            &s.interaction,
            "quadratic",
            &["none", "quadratic", "kernel"],
        )?,
        sigma_w: c.float(
            "design.sigma_w",
            &s.sigma_w,
            if hard { 11.0 } else { 14.0 },
            0.0,
            1e6,
            true,
        )?,
        // No default here: unset stays `None` (out of the stage keys), see `Design`.
        kernel_sigma_w: s
            .kernel_sigma_w
            .is_some()
            .then(|| {
                c.float(
                    "design.kernel_sigma_w",
                    &s.kernel_sigma_w,
                    0.0,
                    0.0,
                    1e6,
                    true,
                )
            })
            .transpose()?,
        clamp,
        temperature: c.float(
            "design.temperature",
            &s.temperature,
            em_protein::representation::DEFAULT_TEMPERATURE,
            0.0,
            100.0,
            true,
        )?,
        top_k: c.int("design.top_k", &s.top_k, 128, 1, 1_000_000)?,
        kappa: c.float("design.kappa", &s.kappa, 0.0, 0.0, 1e6, false)?,
        ablation: s.ablation.unwrap_or(own.is_none()),
        constraints: s
            .constraints
            .clone()
            .filter(|c| !c.is_empty())
            .map(Box::new),
    };
    if let Some(cc) = &design.constraints {
        let at = |e: &em_protein::constraints::ConstraintError| {
            let key = e.field.trim_start_matches("design.constraints.");
            let (table, key) = match key.split_once('.') {
                Some((t, k)) => (format!("design.constraints.{t}"), k.trim_matches('"')),
                None => ("design.constraints".to_string(), key),
            };
            let mut span = key_span(src, &table, Some(key));
            if span == (0..0) {
                span = key_span(src, "design.constraints", None);
            }
            let (line, col) = src.line_col(span.start);
            anyhow::anyhow!("{}:{line}:{col}: {e}", src.path.display())
        };
        let Some(f) = own else {
            return Err(src.error_at(
                key_span(src, "design.constraints", None),
                "design.constraints",
                "constraints need a wild type: use [data] source = \"file\" with \
                 `data.file.wild_type`",
            ));
        };
        let Some(wt) = &f.wild_type else {
            return Err(src.error_at(
                key_span(src, "design.constraints", None),
                "design.constraints",
                "constraints are positions of the wild type: set `data.file.wild_type`",
            ));
        };
        cc.check(wt, f.file.first_position).map_err(|e| at(&e))?;
    }
    if let Some(k) = &s.kappa
        && design.kappa > 0.0
        && predictor.ensemble() == 1
    {
        return Err(src.error_at(
            k.span(),
            "design.kappa",
            "kappa weighs the spread of a predictor ensemble: set `predictor.ensemble` > 1 \
             (with one predictor the spread is 0)",
        ));
    }
    // Keeping the top k of fewer than k samples keeps them all while reports say "top k".
    match &s.top_k {
        None => design.top_k = design.top_k.min(design.n_samples),
        Some(t) if design.top_k > design.n_samples => {
            return Err(src.error_at(
                t.span(),
                "design.top_k",
                format!(
                    "top_k = {} exceeds n_samples = {}: the top k of each seed's samples are kept, \
                 so top_k must be at most n_samples",
                    design.top_k, design.n_samples
                ),
            ));
        }
        Some(_) => {}
    }
    let evaluate = Evaluate {
        score_training: raw.evaluate.score_training.unwrap_or(true),
    };
    let report = ProteinReport {
        bins: c.int("report.bins", &raw.report.bins, 30, 2, 1000)?,
    };
    if raw.latent.is_some() && own.is_some() {
        let at = src.text.find("[latent]").unwrap_or(0);
        return Err(src.error_at(
            at..at,
            "latent",
            "the latent representation needs a benchmark task's VAE ([data] task); \
             own data designs on the one-hot embedding",
        ));
    }
    Ok(Plan {
        workflow,
        body: Body::Protein(Protein {
            data,
            predictor,
            energy,
            design,
            evaluate,
            report,
            latent: raw.latent.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_protein::design::Interaction;

    fn src(text: &str) -> Source {
        Source {
            path: "dir/w.toml".into(),
            text: text.into(),
        }
    }

    const MIN: &str =
        "[workflow]\nkind = \"protein\"\n[data]\ntask = \"aav\"\ndifficulty = \"medium\"\n";

    #[test]
    fn defaults_follow_the_difficulty_and_resolve_round_trips() {
        let plan = super::super::plan::build(&src(MIN), None).unwrap();
        let Body::Protein(p) = &plan.body else {
            panic!("not protein")
        };
        assert_eq!((p.design.t_end, p.design.sigma_w), (1.7, 14.0));
        assert!(matches!(p.predictor, Predictor::Ggs { smoothed: false }));
        assert_eq!(p.design.seeds, [0, 1, 2, 3, 4]);
        p.design.config(true).check().unwrap();
        let text = plan.resolved_toml().unwrap();
        let again = super::super::plan::build(&src(&text), None).unwrap();
        assert_eq!(again.resolved_toml().unwrap(), text);
        assert_eq!(
            plan.stage_names(),
            [
                "data",
                "predictor",
                "energy",
                "design",
                "evaluate",
                "report"
            ]
        );
    }

    /// The protein plan of [`MIN`] followed by `extra`.
    fn protein(extra: &str) -> Protein {
        let plan = super::super::plan::build(&src(&format!("{MIN}{extra}")), None).unwrap();
        let Body::Protein(p) = plan.body else {
            panic!("not protein")
        };
        p
    }

    #[test]
    fn ema_default_follows_the_step_count_and_leaves_little_of_the_init() {
        let ema = |extra: &str| {
            let p = protein(extra);
            (p.energy.train.ema_decay, p.energy.train.steps)
        };
        let (d, steps) = ema("");
        assert_eq!(steps, 3000);
        assert!((d - (1.0 - 10.0 / 3000.0)).abs() < 1e-12, "{d}");
        let (d, steps) = ema("[energy.train]\nsteps = 1500\n");
        assert!((d - (1.0 - 10.0 / 1500.0)).abs() < 1e-12, "{d}");
        assert!(d.powi(steps as i32) < 1e-4);
        let (d, _) = ema("[energy.train]\nsteps = 100000\n");
        assert_eq!(d, 0.999);
        let (d, _) = ema("[energy.train]\nsteps = 1500\nema_decay = 0.9\n");
        assert_eq!(d, 0.9);
    }

    #[test]
    fn kernel_width_is_its_own_field() {
        let build = |extra: &str| protein(extra).design.config(true).interaction;
        let kernel = "[design]\ninteraction = \"kernel\"\nsigma_w = 9.0\n";
        assert_eq!(build(kernel), Interaction::Kernel { sigma_w: 0.2 });
        let set = format!("{kernel}kernel_sigma_w = 0.1\n");
        assert_eq!(build(&set), Interaction::Kernel { sigma_w: 0.1 });
        let quad = "[design]\nsigma_w = 9.0\nkernel_sigma_w = 0.1\n";
        assert_eq!(build(quad), Interaction::Quadratic { sigma_w: 9.0 });
    }

    #[test]
    fn bad_values_name_field_and_line() {
        let bad = |extra: &str, want: &str| {
            let text = format!("{MIN}{extra}");
            let err = super::super::plan::build(&src(&text), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err}");
        };
        bad("[design]\nzeta = -1.0\n", "w.toml:7:8: field `design.zeta`");
        bad(
            "[design]\ninteraction = \"spring\"\n",
            "w.toml:7:15: field `design.interaction`: unknown value `spring`",
        );
        bad(
            "[predictor]\nepochs = 3\n",
            "w.toml:7:10: field `predictor.epochs`: only used with source = \"train\"",
        );
        bad(
            "[energy]\nkernel = 4\n",
            "field `energy.kernel`: must be odd",
        );
        bad(
            "[design]\nclamp = [1.0, -1.0]\n",
            "w.toml:7:9: field `design.clamp`",
        );
        let text = MIN.replace("aav", "tem1");
        let err = super::super::plan::build(&src(&text), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("w.toml:4:8: field `data.task`"), "{err}");
    }

    /// An own-data workflow over a 3-residue wild type and a mutation list in `dir`.
    fn own(dir: &Path, extra: &str) -> Source {
        std::fs::write(
            dir.join("m.csv"),
            "mutations,score\nwt,1\nA1G,2\nR2K,3\nA1G,4\n",
        )
        .unwrap();
        Source {
            path: dir.join("w.toml"),
            text: format!(
                "[workflow]\nkind = \"protein\"\n[data]\nsource = \"file\"\n[data.file]\n\
                 mutations = \"m.csv\"\nwild_type = \"ARN\"\nholdout = 0.34\n{extra}"
            ),
        }
    }

    #[test]
    fn own_data_is_read_at_plan_time_and_resolves_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let extra = "[design.constraints]\nfixed = \"3\"\nbanned = \"C\"\n";
        let plan = super::super::plan::build(&own(dir.path(), extra), None).unwrap();
        let Body::Protein(p) = &plan.body else {
            panic!("not protein")
        };
        let Data::File(f) = &p.data else {
            panic!("not own data")
        };
        // Repeats averaged: 3 distinct rows; a third of them held out.
        assert_eq!((f.rows, f.length), (3, 3));
        assert!(matches!(
            p.predictor,
            Predictor::Train { val_samples: 1, .. }
        ));
        assert!(!p.design.ablation);
        let text = plan.resolved_toml().unwrap();
        let again = super::super::plan::build(
            &Source {
                path: dir.path().join("r.toml"),
                text: text.clone(),
            },
            None,
        )
        .unwrap();
        assert_eq!(again.resolved_toml().unwrap(), text);
    }

    /// `predictor.ensemble` and `design.kappa` reach the configs; their defaults (1, 0) are
    /// left out of the serialised settings, so stage keys stay as before.
    #[test]
    fn ensemble_and_kappa_are_read_and_their_defaults_serialise_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let body = |extra: &str| {
            let plan = super::super::plan::build(&own(dir.path(), extra), None).unwrap();
            let Body::Protein(p) = plan.body else {
                panic!("not protein")
            };
            p
        };
        let plain = body("");
        let explicit = body("[predictor]\nensemble = 1\n[design]\nkappa = 0.0\n");
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::to_value(&explicit).unwrap()
        );
        assert_eq!(plain.predictor.ensemble(), 1);
        let p = body("[predictor]\nensemble = 5\n[design]\nkappa = 1\n");
        assert_eq!(p.predictor.ensemble(), 5);
        assert_eq!(p.design.config(true).kappa, 1.0);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["predictor"]["ensemble"], 5);
        assert_eq!(v["design"]["kappa"], 1.0);
        assert!(
            serde_json::to_value(&plain).unwrap()["predictor"]
                .get("ensemble")
                .is_none()
        );
    }

    #[test]
    fn own_data_errors_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let bad = |extra: &str, want: &str| {
            let err = super::super::plan::build(&own(dir.path(), extra), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err}");
        };
        bad(
            "[design.constraints]\nfixed = \"1-4\"\n",
            "w.toml:10:1: field `design.constraints.fixed`: position 4 is outside the wild type (positions 1-3)",
        );
        bad(
            "[design.constraints.allowed]\n\"2\" = \"AX\"\n",
            "w.toml:10:1: field `design.constraints.allowed.\"2\"`: character 2: unknown residue 'X'",
        );
        bad(
            "[design.constraints]\nbanned = \"C\"\nmin_distance = 4\n",
            "w.toml:11:1: field `design.constraints.min_distance`: must be between 1 and the \
             sequence length 3 (substitutions between two designs), got 4",
        );
        bad(
            "[predictor]\nsource = \"ggs\"\n",
            "w.toml:10:10: field `predictor.source`",
        );
        bad(
            "[predictor]\nval_samples = 7\n",
            "field `predictor.val_samples`",
        );
        bad("[data.file.x]\n", "unknown field `x`");
        bad(
            "[predictor]\nensemble = 0\n",
            "w.toml:10:12: field `predictor.ensemble`: must be in 1..=64, got 0",
        );
        bad(
            "[design]\nkappa = 1.0\n",
            "w.toml:10:9: field `design.kappa`: kappa weighs the spread of a predictor ensemble",
        );
        bad(
            "[predictor]\nensemble = 3\n[design]\nkappa = -1\n",
            "w.toml:12:9: field `design.kappa`: must be in [0, 1000000], got -1",
        );
        let wrong = own(dir.path(), "")
            .text
            .replace("holdout = 0.34", "holdout = 2.0");
        let err = super::super::plan::build(
            &Source {
                path: dir.path().join("w.toml"),
                text: wrong,
            },
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("w.toml:8:1: invalid data.file.holdout = 2"),
            "{err}"
        );
        std::fs::write(dir.path().join("m.csv"), "mutations,score\nwt,1\nR1G,2\n").unwrap();
        let src = own(dir.path(), "");
        std::fs::write(dir.path().join("m.csv"), "mutations,score\nwt,1\nR1G,2\n").unwrap();
        let err = super::super::plan::build(&src, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.csv:3: mutation 'R1G': wild type has 'A' at position 1, not 'R'"),
            "{err}"
        );
    }
}
