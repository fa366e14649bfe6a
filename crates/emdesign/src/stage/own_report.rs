//! The `evaluate` and `report` stages on own data. No oracle exists for a user's protein, so
//! nothing here is a measurement: designs are described by the predictor trained on the
//! user's data (predicted fitness), diversity, novelty (edits to the nearest training
//! sequence) and edits from the wild type; the report says so and gives the predictor's
//! held-out Spearman. Ranked `designs.fasta` / `designs.csv` carry the same columns; no
//! design in them was measured, and any two lie `min_distance` apart (re-checked here).

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use em_protein::constraints::{Constraints, mutation_count, mutation_list};
use em_protein::io::{Annotated, csv::write_csv, fasta::write_fasta};
use em_protein::metrics;
use em_protein::predictor::TrainReport;
use em_protein::selection::Selection;
use em_protein::sequence::Sequence;
use serde::{Deserialize, Deserializer, Serialize};

use super::cache::write_atomic;
use super::protein_evaluate::Stat;
use super::protein_files::{Batch, batch_file, read_json, read_train, write_json};
use super::{Outcome, Stage, StageCtx};
use crate::workflow::plan::Header;
use crate::workflow::protein::{Design, OwnData};

/// One batch described without an oracle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnBatchEval {
    /// Design seed.
    pub seed: u64,
    /// Interaction setting.
    pub interaction: String,
    /// Designs kept.
    pub n_designs: usize,
    /// Median predicted fitness, normalised by the measured range (0 worst, 1 best measured).
    #[serde(deserialize_with = "nan_or")]
    pub predicted_fitness: f64,
    /// Mean pairwise edit distance.
    #[serde(deserialize_with = "nan_or")]
    pub diversity: f64,
    /// Median edits to the nearest training sequence.
    #[serde(deserialize_with = "nan_or")]
    pub novelty: f64,
    /// Median substitutions from the wild type (NaN without one).
    #[serde(deserialize_with = "nan_or")]
    pub edits_from_wt: f64,
    /// Edits to the nearest training sequence of each design (batch order).
    pub nearest_train: Vec<u32>,
    /// Substitutions from the wild type of each design (empty without one).
    pub n_mut: Vec<usize>,
}

/// Mean (std) over seeds of one interaction setting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnSummary {
    /// Predicted fitness.
    #[serde(deserialize_with = "stat_nan")]
    pub predicted_fitness: Stat,
    /// Diversity.
    #[serde(deserialize_with = "stat_nan")]
    pub diversity: Stat,
    /// Novelty.
    #[serde(deserialize_with = "stat_nan")]
    pub novelty: Stat,
    /// Edits from the wild type.
    #[serde(deserialize_with = "stat_nan")]
    pub edits_from_wt: Stat,
}

/// `evaluate/evaluation.json` on own data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnEvaluation {
    /// Always `null`: no oracle exists for a user's protein.
    pub oracle: Option<String>,
    /// Per batch.
    pub batches: Vec<OwnBatchEval>,
    /// Per interaction setting.
    pub summary: BTreeMap<String, OwnSummary>,
}

/// A number JSON holds as `null` (NaN: a batch without designs, no wild type) reads back
/// as NaN.
fn nan_or<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A [`Stat`] whose mean or std JSON holds as `null` (see [`nan_or`]).
fn stat_nan<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Stat, D::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(deserialize_with = "nan_or")]
        mean: f64,
        #[serde(deserialize_with = "nan_or")]
        std: f64,
    }
    let r = Raw::deserialize(d)?;
    Ok(Stat {
        mean: r.mean,
        std: r.std,
    })
}

fn stat(v: &[f64]) -> Stat {
    let m = metrics::mean_std(v);
    Stat {
        mean: m.mean,
        std: m.std,
    }
}

/// The `evaluate` stage on own data.
pub struct OwnEvaluateStage {
    /// Which batches exist.
    pub design: Design,
    /// The wild type (edits from it).
    pub wild_type: Option<Sequence>,
}

impl Stage for OwnEvaluateStage {
    fn name(&self) -> &str {
        "evaluate"
    }
    fn kind(&self) -> &str {
        "protein.own_evaluate"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "oracle": null })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "design"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let train = read_train(ctx.input("data")?)?;
        let design_dir = ctx.input("design")?;
        let variants = self.design.variants();
        let mut batches = Vec::new();
        for (_, name) in &variants {
            for &seed in &self.design.seeds {
                let b: Batch = read_json(&design_dir.join(batch_file(seed, name)))?;
                let seqs = b.parsed()?;
                let nearest_train = metrics::min_distances(&seqs, train.sequences());
                let n_mut: Vec<usize> = self.wild_type.as_ref().map_or(Vec::new(), |wt| {
                    seqs.iter().map(|s| mutation_count(wt, s)).collect()
                });
                let f = |v: &[f64]| metrics::median(v);
                let near: Vec<f64> = nearest_train.iter().map(|&d| f64::from(d)).collect();
                let muts: Vec<f64> = n_mut.iter().map(|&d| d as f64).collect();
                batches.push(OwnBatchEval {
                    seed,
                    interaction: name.clone(),
                    n_designs: seqs.len(),
                    predicted_fitness: f(&b.predictor_fitness),
                    diversity: metrics::diversity(&seqs),
                    novelty: f(&near),
                    edits_from_wt: f(&muts),
                    nearest_train,
                    n_mut,
                });
            }
        }
        let mut summary = BTreeMap::new();
        for (_, name) in &variants {
            let of = |g: fn(&OwnBatchEval) -> f64| -> Stat {
                stat(
                    &batches
                        .iter()
                        .filter(|b| &b.interaction == name)
                        .map(g)
                        .collect::<Vec<_>>(),
                )
            };
            summary.insert(
                name.clone(),
                OwnSummary {
                    predicted_fitness: of(|b| b.predicted_fitness),
                    diversity: of(|b| b.diversity),
                    novelty: of(|b| b.novelty),
                    edits_from_wt: of(|b| b.edits_from_wt),
                },
            );
        }
        let eval = OwnEvaluation {
            oracle: None,
            batches,
            summary,
        };
        write_json(&ctx.out.join("evaluation.json"), &eval)?;
        let main = &variants[0].1;
        let mut headline = vec![("oracle".into(), "none".into())];
        if let Some(s) = eval.summary.get(main) {
            headline.push((
                "predicted".into(),
                format!("{:.3}", s.predicted_fitness.mean),
            ));
            headline.push(("diversity".into(), format!("{:.2}", s.diversity.mean)));
            headline.push(("novelty".into(), format!("{:.1}", s.novelty.mean)));
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::to_value(&eval.summary)?,
        })
    }
}

/// The `report` stage on own data.
pub struct OwnReportStage {
    /// Which batches exist.
    pub design: Design,
    /// Workflow name and seed.
    pub header: Header,
    /// The data set.
    pub data: OwnData,
    /// The checked constraints, re-checked on every design written.
    pub constraints: Option<Constraints>,
}

/// Column names of `designs.fasta` headers and `designs.csv`, in order; a predictor
/// ensemble adds `spread` after `pred`.
pub const COLUMNS: [&str; 6] = ["pred", "muts", "n_mut", "nearest_train", "method", "seed"];

impl Stage for OwnReportStage {
    fn name(&self) -> &str {
        "report"
    }
    fn kind(&self) -> &str {
        "protein.own_report"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "design": self.design, "header": self.header, "format": 2 })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "predictor", "design", "evaluate"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let eval: OwnEvaluation = read_json(&ctx.input("evaluate")?.join("evaluation.json"))?;
        let predictor: TrainReport = read_json(&ctx.input("predictor")?.join("predictor.json"))?;
        let design_dir = ctx.input("design")?;
        let main = self.design.variants()[0].1.clone();
        let first = self.data.file.first_position;
        let measured = read_train(ctx.input("data")?)?.into_parts().0;
        let selection = Selection::new(
            measured,
            self.constraints
                .as_ref()
                .and_then(Constraints::min_distance),
        );
        // (predictor score, seed, sequence, nearest_train, spread) of the main method's designs.
        let mut picked: Vec<(f64, u64, Sequence, u32, Option<f64>)> = Vec::new();
        for be in eval.batches.iter().filter(|b| b.interaction == main) {
            let b: Batch = read_json(&design_dir.join(batch_file(be.seed, &be.interaction)))?;
            for (i, s) in b.parsed()?.into_iter().enumerate() {
                if let Some(c) = &self.constraints {
                    let v = c.violations(&s);
                    if !v.is_empty() {
                        anyhow::bail!(
                            "design {s} (seed {}) violates the constraints: {}",
                            b.seed,
                            v.join("; ")
                        );
                    }
                }
                if selection.is_measured(&s) {
                    anyhow::bail!(
                        "design {s} (seed {}) was already measured (it is in data/train.csv)",
                        b.seed
                    );
                }
                let spread = b.predictor_spread.get(i).copied();
                picked.push((
                    b.predictor_scores[i],
                    b.seed,
                    s,
                    be.nearest_train[i],
                    spread,
                ));
            }
        }
        // Best first by the score guidance used (`pred - kappa · spread`); ties keep seed
        // order; repeats keep their first (best) copy; then, across seeds, the same greedy
        // min_distance rule as within one.
        let kappa = self.design.kappa;
        let score = |p: &(f64, u64, Sequence, u32, Option<f64>)| p.0 - kappa * p.4.unwrap_or(0.0);
        picked.sort_by(|a, b| score(b).total_cmp(&score(a)));
        let ensemble = picked.iter().any(|p| p.4.is_some());
        let mut seen = HashSet::new();
        picked.retain(|p| seen.insert(p.2.clone()));
        let ranked: Vec<Sequence> = picked.iter().map(|p| p.2.clone()).collect();
        let kept = selection.pick(&ranked, usize::MAX);
        let dropped_close = kept.skipped_close;
        let picked: Vec<_> = kept.rows.iter().map(|&r| picked[r].clone()).collect();
        let final_designs: Vec<Sequence> = picked.iter().map(|p| p.2.clone()).collect();
        let v = selection.violations(&final_designs);
        if !v.is_empty() {
            anyhow::bail!("the designs break the selection rules: {}", v.join("; "));
        }
        let records: Vec<Annotated> = picked
            .iter()
            .enumerate()
            .map(|(i, (pred, seed, s, near, spread))| {
                let (muts, n) = match &self.data.wild_type {
                    Some(wt) => {
                        let m = mutation_list(wt, s, first);
                        let n = m.len().to_string();
                        (
                            if m.is_empty() {
                                "wt".into()
                            } else {
                                m.join(",")
                            },
                            n,
                        )
                    }
                    None => ("NA".into(), "NA".into()),
                };
                let values = [
                    format!("{pred:.4}"),
                    muts,
                    n,
                    near.to_string(),
                    "em".into(),
                    seed.to_string(),
                ];
                let mut fields: Vec<(String, String)> =
                    COLUMNS.iter().map(|c| c.to_string()).zip(values).collect();
                if let Some(sd) = spread {
                    fields.insert(1, ("spread".into(), format!("{sd:.4}")));
                }
                Annotated {
                    id: format!("d{:04}", i + 1),
                    sequence: s.clone(),
                    fields,
                }
            })
            .collect();
        write_fasta(&ctx.out.join("designs.fasta"), &records)?;
        write_csv(&ctx.out.join("designs.csv"), &records)?;
        if !predictor.held_out.is_empty() {
            crate::plot_protein::held_out_scatter(
                &ctx.out.join("predictor_held_out.png"),
                &predictor.held_out,
            )?;
        }
        let md = self.markdown(
            &eval,
            &predictor,
            records.len(),
            dropped_close,
            &main,
            ensemble,
        );
        write_atomic(&ctx.out.join("report.md"), md.as_bytes())?;
        Ok(Outcome {
            headline: vec![
                ("designs".into(), records.len().to_string()),
                (
                    "val_spearman".into(),
                    predictor
                        .val_spearman
                        .map_or("-".into(), |r| format!("{r:.3}")),
                ),
            ],
            metrics: serde_json::json!({
                "designs": records.len(),
                "dropped_within_min_distance": dropped_close,
                "val_spearman": predictor.val_spearman,
                "val_rows": predictor.val_rows,
            }),
        })
    }
}

impl OwnReportStage {
    fn markdown(
        &self,
        eval: &OwnEvaluation,
        predictor: &TrainReport,
        n_designs: usize,
        dropped_close: usize,
        main: &str,
        ensemble: bool,
    ) -> String {
        let ms = |s: &Stat, p: usize| format!("{:.p$} ({:.p$})", s.mean, s.std);
        let f = &self.data.file;
        let file = f.sequences.as_ref().or(f.mutations.as_ref());
        let mut out = format!(
            "# {} (own protein)\n\n\
             **No oracle exists for your protein: no figure below is a measurement.** Fitness \
             is the prediction of a CNN (GGS architecture) trained on your data; order the \
             designs, measure them, and treat the predictions as a ranking.\n\n\
             ## Data\n\n- file: `{}`\n- distinct sequences: {} (length {}); repeated \
             sequences are merged into one row with the mean of their scores\n\
             - wild type: {}\n\n## Predictor\n\n\
             - held-out Spearman: **{}** on {} held-out rows (a seeded draw of \
             `data.file.holdout` = {} of the rows; trained on the other {}, epoch {} of {}, \
             the last one, so the held-out rows chose nothing)\n",
            self.header.name,
            file.map_or("-".into(), |p| p.display().to_string()),
            self.data.rows,
            self.data.length,
            self.data
                .wild_type
                .as_ref()
                .map_or("not given".into(), |w| format!("`{w}`")),
            predictor
                .val_spearman
                .map_or("- (no held-out rows)".into(), |r| format!("{r:.3}")),
            predictor.val_rows,
            f.holdout,
            predictor.train_rows,
            predictor.chosen_epoch,
            predictor.config.epochs,
        );
        if let Some(first) = predictor.members.first() {
            let rho = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.3}"));
            out.push_str(&format!(
                "- an ensemble of {} predictors (same rows and held-out rows, different initial \
                 weights and batch orders): the Spearman above is their mean prediction's; \
                 member 0 alone: {}, members: {}\n- designs are guided and ranked by \
                 `mean - kappa · spread` with kappa = {} (spread: the std of the members' \
                 predictions; 0 = the mean)\n",
                predictor.members.len(),
                rho(first.val_spearman),
                predictor
                    .members
                    .iter()
                    .map(|m| rho(m.val_spearman))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.design.kappa,
            ));
        }
        out.push_str("\n## Constraints\n\n");
        match &self.design.constraints {
            None => out.push_str("none\n"),
            Some(c) => {
                out.push_str(&format!(
                    "- fixed: `{}`\n- banned: `{}`\n- allowed: {}\n- max_mutations: {}\n\
                     - min_distance: {}\n\n\
                     Enforced while sampling (forbidden one-hot coordinates pinned to the \
                     clamp minimum after every Langevin step, argmax over allowed residues, the \
                     cap by reverting the weakest mutations) and re-checked on every design \
                     written: no design violates them.\n",
                    c.fixed,
                    c.banned,
                    if c.allowed.is_empty() {
                        "-".to_string()
                    } else {
                        c.allowed
                            .iter()
                            .map(|(k, v)| format!("`{k}`: `{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    c.max_mutations.map_or("-".into(), |k| k.to_string()),
                    c.min_distance.map_or("-".into(), |k| k.to_string()),
                ));
            }
        }
        out.push_str(&format!(
            "\nNo design is a sequence already measured (every row of the training table, \
             earlier lab rounds included): the top designs of each seed are the best \
             unmeasured ones{}.\n",
            match self
                .constraints
                .as_ref()
                .and_then(Constraints::min_distance)
            {
                Some(n) => format!(
                    ", each at least {n} substitutions from every better one kept (greedy by \
                     predicted score, within a seed and again across seeds: {dropped_close} \
                     dropped across seeds)"
                ),
                None => String::new(),
            }
        ));
        out.push_str(&format!(
            "\n## Designs (per seed, then mean (std) over {} seeds)\n\n\
             | interaction | predicted fitness | diversity | novelty | edits from WT |\n\
             |---|---|---|---|---|\n",
            self.design.seeds.len()
        ));
        for (name, s) in &eval.summary {
            out.push_str(&format!(
                "| {name}{} | {} | {} | {} | {} |\n",
                if name == main { " (main)" } else { "" },
                ms(&s.predicted_fitness, 3),
                ms(&s.diversity, 2),
                ms(&s.novelty, 1),
                ms(&s.edits_from_wt, 1),
            ));
        }
        out.push_str(&format!(
            "\n- predicted fitness: median over a seed's designs of the predicted score \
             min-max normalised by your measured range (0 = worst, 1 = best measured \
             variant; above 1 is an extrapolation).\n- diversity: mean pairwise edit \
             distance; novelty: median edits to the nearest training sequence; edits from \
             WT: median substitutions from the wild type.\n\n## Files\n\n\
             - `designs.fasta`: the {n_designs} distinct designs of the main method, best \
             predicted first, ids `d0001`, ... Header `>d0001 pred=P{sp} muts=A23G,K45R \
             n_mut=N nearest_train=E method=em seed=S`: P the predicted score in the units of \
             your score column (higher is better){spd}, the substitutions from the wild type in \
             wild-type numbering (`wt` for none, `NA` without a wild type), N their count, \
             E the edit distance to the nearest training sequence, the method and the design \
             seed.\n- `designs.csv`: the same rows and columns.\n\
             - `predictor_held_out.png`: the predictor on its held-out rows, measured (x) \
             against predicted (y) score, one point per row (absent without held-out rows).\n",
            sp = if ensemble { " spread=D" } else { "" },
            spd = if ensemble {
                " (the ensemble's mean), D the std of the members' predictions in the same \
                 units (how much they disagree: large D, less trust), ranked by \
                 `P - kappa · D`"
            } else {
                ""
            },
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch without designs (every sample measured) or without a wild type has NaN
    /// medians, which JSON writes as `null`: they read back as NaN, not as an error.
    #[test]
    fn nan_metrics_survive_the_json_round_trip() {
        let b = OwnBatchEval {
            seed: 0,
            interaction: "quadratic".into(),
            n_designs: 0,
            predicted_fitness: f64::NAN,
            diversity: 0.0,
            novelty: f64::NAN,
            edits_from_wt: f64::NAN,
            nearest_train: Vec::new(),
            n_mut: Vec::new(),
        };
        let s = OwnSummary {
            predicted_fitness: stat(&[f64::NAN, 0.5]),
            diversity: stat(&[1.0]),
            novelty: stat(&[f64::NAN]),
            edits_from_wt: stat(&[2.0]),
        };
        let eval = OwnEvaluation {
            oracle: None,
            batches: vec![b],
            summary: [("quadratic".to_string(), s)].into_iter().collect(),
        };
        let text = serde_json::to_string(&eval).unwrap();
        assert!(text.contains("\"novelty\":null"), "{text}");
        let back: OwnEvaluation = serde_json::from_str(&text).unwrap();
        assert!(back.batches[0].predicted_fitness.is_nan());
        assert_eq!(back.batches[0].diversity, 0.0);
        assert!(back.summary["quadratic"].novelty.mean.is_nan());
        assert_eq!(back.summary["quadratic"].edits_from_wt.mean, 2.0);
    }
}
