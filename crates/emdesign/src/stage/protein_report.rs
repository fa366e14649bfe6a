//! Protein stage `report`: `designs.fasta` (main method, distinct, ranked; ablation in its
//! own file, see `protein_fasta`) + `designs.csv` (every design with predictor score,
//! normalised oracle fitness, edits from the nearest training sequence, seed, interaction),
//! `report.md` + `report.json` (per seed, mean (std), published rows, ablation, model sizes,
//! stage times) and the two PNG plots.

use std::fmt::Write as _;

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use em_protein::energy_model::load_potential;
use em_protein::io::{Annotated, csv::write_csv};

use super::cache::read_record;
use super::protein_energy::{LATENT_SUMMARY, LatentSummary, potential_path};
use super::protein_evaluate::{Evaluation, Summary};
use super::protein_fasta;
use super::protein_files::{Batch, batch_file, load_predictor, read_json, read_split, write_json};
use super::published::{self, Published};
use super::{Outcome, Stage, StageCtx};
use crate::plot_protein;
use crate::report::StageTime;
use crate::stage::cache::write_atomic;
use crate::workflow::plan::Header;
use crate::workflow::protein::{Design, Predictor, ProteinReport};

/// The stages whose wall time the report lists.
const TIMED: [&str; 5] = ["data", "predictor", "energy", "design", "evaluate"];

/// The `report` stage of a protein workflow.
pub struct ProteinReportStage {
    /// Settings from `[report]`.
    pub cfg: ProteinReport,
    /// Which batches exist.
    pub design: Design,
    /// Name and seed for the title.
    pub header: Header,
    /// Shape of the predictor (to load it and count its parameters).
    pub predictor: Predictor,
}

/// Trainable parameters of the workflow's two networks.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ParamCounts {
    /// The energy network `V_theta`.
    pub energy: usize,
    /// The guiding fitness predictor.
    pub predictor: usize,
}

impl ProteinReportStage {
    fn param_counts(&self, ctx: &StageCtx) -> Result<ParamCounts> {
        let device = Device::flex();
        let (potential, _) = load_potential(&potential_path(ctx.input("energy")?), &device)?;
        let predictor = load_predictor(ctx.input("predictor")?, &self.predictor, &device)?;
        Ok(ParamCounts {
            energy: potential.num_params(),
            predictor: predictor.num_params(),
        })
    }
}

impl Stage for ProteinReportStage {
    fn name(&self) -> &str {
        "report"
    }
    fn kind(&self) -> &str {
        "protein.report"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "report": self.cfg, "name": self.header.name,
            "published": published::TEXT,
        })
    }
    fn upstream(&self) -> Vec<&str> {
        TIMED.to_vec()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let split = read_split(ctx.input("data")?)?;
        let eval: Evaluation = read_json(&ctx.input("evaluate")?.join("evaluation.json"))?;
        let design_dir = ctx.input("design")?;
        let mut designs = Vec::new();
        for be in &eval.batches {
            let b: Batch = read_json(&design_dir.join(batch_file(be.seed, &be.interaction)))?;
            for (i, s) in b.parsed()?.into_iter().enumerate() {
                let record = Annotated {
                    id: format!("s{}_{}_{:04}", b.seed, b.interaction, i + 1),
                    sequence: s,
                    fields: vec![
                        ("predictor".into(), format!("{:.4}", b.predictor_scores[i])),
                        ("oracle".into(), format!("{:.4}", be.fitness_per_design[i])),
                        ("edits".into(), be.edits_from_training[i].to_string()),
                        ("seed".into(), b.seed.to_string()),
                        ("interaction".into(), b.interaction.clone()),
                    ],
                };
                designs.push(protein_fasta::Scored {
                    record,
                    predictor: b.predictor_scores[i],
                    interaction: b.interaction.clone(),
                });
            }
        }
        let main = self.design.variants()[0].1.clone();
        let records: Vec<Annotated> = designs.iter().map(|d| d.record.clone()).collect();
        write_csv(&ctx.out.join("designs.csv"), &records)?;
        let (n_main, n_ablation) = protein_fasta::write_fastas(ctx.out, &designs, &main)?;

        let main_fitness: Vec<f64> = eval
            .batches
            .iter()
            .filter(|b| b.interaction == main)
            .flat_map(|b| b.fitness_per_design.iter().copied())
            .collect();
        plot_protein::fitness_histogram(
            &ctx.out.join("fitness_hist.png"),
            &main_fitness,
            &eval.training_fitness,
            self.cfg.bins,
        )?;
        let points: Vec<(f64, f64, bool)> = eval
            .batches
            .iter()
            .map(|b| (b.diversity, b.fitness, b.interaction == main))
            .collect();
        plot_protein::fitness_vs_diversity(&ctx.out.join("fitness_vs_diversity.png"), &points)?;

        let stages: Vec<StageTime> = TIMED
            .iter()
            .filter_map(|&name| {
                let r = read_record(ctx.input(name).ok()?)?;
                Some(StageTime {
                    stage: name.into(),
                    wall_secs: r.wall_secs,
                    key: r.key.short().into(),
                })
            })
            .collect();
        let rows = published::rows(&split.task, &split.difficulty)?;
        let training_median = em_protein::metrics::median(&eval.training_fitness);
        let params = self.param_counts(ctx)?;
        let latent_file = ctx.input("energy")?.join(LATENT_SUMMARY);
        let latent: Option<LatentSummary> = if latent_file.is_file() {
            Some(read_json(&latent_file)?)
        } else {
            None
        };
        let mut json = serde_json::json!({
            "name": self.header.name, "seed": self.header.seed, "split": split,
            "params": params, "oracle": eval.oracle.as_deref().unwrap_or("ggs"),
            "interaction": main, "summary": eval.summary,
            "per_seed": eval.batches.iter().map(|b| serde_json::json!({
                "seed": b.seed, "interaction": b.interaction, "n_designs": b.n_designs,
                "fitness": b.fitness, "diversity": b.diversity, "novelty": b.novelty,
            })).collect::<Vec<_>>(),
            "training_median_fitness": training_median,
            "published": rows, "stages": stages,
        });
        if let Some(l) = &latent {
            json["representation"] = serde_json::json!({ "kind": "latent", "vae": l });
        }
        write_json(&ctx.out.join("report.json"), &json)?;
        let mut md = markdown(
            self,
            &split,
            &eval,
            &main,
            &rows,
            &stages,
            training_median,
            params,
        );
        if let Some(l) = &latent {
            let _ = write!(
                md,
                "\n## Representation\n\nEnergy Matching ran in the {}-d latent of the sequence \
                 VAE `{}` (the Energy Matching paper's protein setting): the energy trained on the \
                 encoder's means of the training split, designs were sampled in the latent and \
                 decoded by the decoder's argmax. The VAE recovers {:.1}% of the training split's \
                 residues (decode of the encoder mean).\n",
                l.latent_dim,
                l.vae,
                100.0 * l.reconstruction_accuracy
            );
        }
        write_atomic(&ctx.out.join("report.md"), md.as_bytes())?;
        let mut headline = vec![("designs".into(), n_main.to_string())];
        if let Some(s) = eval.summary.get(&main) {
            headline.push(("fitness".into(), format!("{:.3}", s.fitness.mean)));
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::json!({
                "designs": records.len(), "distinct_main": n_main, "distinct_ablation": n_ablation,
            }),
        })
    }
}

fn ms(s: &super::protein_evaluate::Stat, p: usize) -> String {
    format!("{:.p$} ({:.p$})", s.mean, s.std)
}

fn summary_row(label: &str, s: &Summary) -> String {
    format!(
        "| {label} | {} | {} | {} |\n",
        ms(&s.fitness, 3),
        ms(&s.diversity, 2),
        ms(&s.novelty, 1)
    )
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    st: &ProteinReportStage,
    split: &super::protein_files::SplitInfo,
    eval: &Evaluation,
    main: &str,
    rows: &[Published],
    stages: &[StageTime],
    training_median: f64,
    params: ParamCounts,
) -> String {
    let d = &st.design;
    let mut s = format!(
        "# {} ({} {}, design seeds {})\n\nTraining split: {} of {} sequences ({}); {} seeds x {} samples, \
         top {} by the predictor; interaction `{main}` (sigma_w {}), zeta {}, t_end {}.\n\n",
        st.header.name,
        split.task,
        split.difficulty,
        d.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        split.n_train,
        split.n_ground_truth,
        if split.source == "ggs" {
            "GGS's own split file"
        } else {
            "rebuilt from the ground truth"
        },
        d.seeds.len(),
        d.n_samples,
        d.top_k,
        d.interaction_width(),
        d.zeta,
        d.t_end
    );
    match eval.oracle.as_deref() {
        Some("emdesign-trained") => {
            let note = eval
                .oracle_note
                .as_deref()
                .unwrap_or("oracle: emdesign-trained");
            let _ = writeln!(
                s,
                "**{note}.** Fitness below is scored by emdesign's own oracle, not GGS's: \
                 it is not comparable with the published rows.\n"
            );
        }
        _ => s.push_str("Oracle: GGS's CNN oracle of the task (pinned SHA-256).\n\n"),
    }
    s.push_str("## Per seed\n\n| seed | interaction | designs | fitness | diversity | novelty |\n|---|---|---|---|---|---|\n");
    for b in &eval.batches {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.2} | {:.1} |",
            b.seed, b.interaction, b.n_designs, b.fitness, b.diversity, b.novelty
        );
    }
    s.push_str("\n## Mean (std) over seeds, next to published results\n\n| method | fitness | diversity | novelty |\n|---|---|---|---|\n");
    if let Some(m) = eval.summary.get(main) {
        s.push_str(&summary_row(&format!("emdesign EM ({main})"), m));
    }
    for r in rows {
        let _ = writeln!(
            s,
            "| {} (published: {}) | {:.2} | {:.2} | {:.1} |",
            r.method, r.source, r.fitness, r.diversity, r.novelty
        );
    }
    if training_median.is_finite() {
        let _ = writeln!(
            s,
            "| training split (oracle, median) | {training_median:.3} | - | 0 |"
        );
    }
    if eval.summary.len() > 1 {
        s.push_str("\n## Ablation: interaction on vs off (same seeds)\n\n| interaction | fitness | diversity | novelty |\n|---|---|---|---|\n");
        for (name, m) in &eval.summary {
            s.push_str(&summary_row(name, m));
        }
    }
    let _ = writeln!(
        s,
        "\n## Model sizes\n\n| network | trainable parameters |\n|---|---|\n\
         | energy model V_theta | {} |\n| predictor (guidance) | {} |",
        params.energy, params.predictor
    );
    s.push_str("\n## Stage wall times\n\n| stage | wall time (s) | key |\n|---|---|---|\n");
    for t in stages {
        let _ = writeln!(s, "| {} | {:.1} | `{}` |", t.stage, t.wall_secs, t.key);
    }
    s.push_str(
        "\n## Plots\n\n- `fitness_hist.png`: normalised oracle fitness, designs (red) over the \
         training split (blue), as fractions.\n- `fitness_vs_diversity.png`: one point per seed, \
         x = diversity, y = fitness; red with interaction, blue without.\n",
    );
    s.push_str(protein_fasta::FILES_SECTION);
    s
}
