//! The protein report's FASTA files as ordering lists: `designs.fasta` holds the main
//! method's distinct designs ranked by predictor score (ids `design_0001`, ...), the
//! no-interaction ablation's go to `designs_ablation.fasta`, and the text that explains
//! their header fields and the report's metrics (report.md, README).

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use em_protein::io::{Annotated, fasta::write_fasta};

/// File of the main method's designs.
pub const MAIN_FASTA: &str = "designs.fasta";
/// File of the ablation's designs.
pub const ABLATION_FASTA: &str = "designs_ablation.fasta";

/// One design with its exact predictor score (the FASTA fields hold it rounded).
pub struct Scored {
    /// The record as written to `designs.csv` (all seeds, all settings).
    pub record: Annotated,
    /// Its predictor score.
    pub predictor: f64,
    /// Its interaction setting.
    pub interaction: String,
}

/// The distinct sequences of `designs` whose interaction passes `keep`, best predictor score
/// first (ties keep batch order, seeds in config order), renamed `<prefix>_<rank>`.
pub fn ranked_unique(
    designs: &[Scored],
    keep: impl Fn(&str) -> bool,
    prefix: &str,
) -> Vec<Annotated> {
    let mut picked: Vec<&Scored> = designs.iter().filter(|d| keep(&d.interaction)).collect();
    picked.sort_by(|a, b| b.predictor.total_cmp(&a.predictor));
    let mut seen = HashSet::new();
    picked
        .into_iter()
        .filter(|d| seen.insert(d.record.sequence.clone()))
        .enumerate()
        .map(|(i, d)| Annotated {
            id: format!("{prefix}_{:04}", i + 1),
            ..d.record.clone()
        })
        .collect()
}

/// Write `designs.fasta` (interaction `main`) and, when there are ablation designs,
/// `designs_ablation.fasta`; returns how many distinct designs each holds.
pub fn write_fastas(out: &Path, designs: &[Scored], main: &str) -> Result<(usize, usize)> {
    let main_set = ranked_unique(designs, |i| i == main, "design");
    write_fasta(&out.join(MAIN_FASTA), &main_set)?;
    let ablation = ranked_unique(designs, |i| i != main, "ablation");
    if !ablation.is_empty() {
        write_fasta(&out.join(ABLATION_FASTA), &ablation)?;
    }
    Ok((main_set.len(), ablation.len()))
}

/// The report.md section that explains the design files, their header fields and the three
/// metrics.
pub const FILES_SECTION: &str = "
## Files and fields

- `designs.fasta`: the ordering list. The main method's designs (every seed, the \
configured interaction) with repeats removed, best predictor score first; ids \
`design_0001`, `design_0002`, ... in that order.
- `designs_ablation.fasta`: the same for the no-interaction ablation (ids `ablation_0001`, \
...), when the ablation ran. Never order from it.
- `designs.csv`: every design of every seed and setting as designed (repeats kept; ids \
`s<seed>_<interaction>_<n>`), the table the per-seed metrics above are computed on.

FASTA header: `>id predictor=P oracle=F edits=E seed=S interaction=I`, where P is the \
predictor's score (the model the design optimised), F the design's normalised oracle \
fitness (below), E the edit (Levenshtein) distance to the nearest training sequence, S the \
design seed that first produced the sequence and I the interaction setting.

Metrics (GGS protocol, per seed over that seed's designs, then mean (std) over seeds):

- **fitness**: median of the oracle score min-max normalised by the task's ground truth, \
`(y - min) / (max - min)`: 0 is the worst and 1 the best measured variant.
- **diversity**: mean pairwise edit distance between the seed's designs.
- **novelty**: median edit distance from each design to its nearest training sequence.

`emdesign eval` on `designs.fasta` scores the pooled, de-duplicated list, so its numbers \
differ from the per-seed means above.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seq: &str, predictor: f64, interaction: &str) -> Scored {
        Scored {
            record: Annotated {
                id: format!("x_{seq}"),
                sequence: seq.parse().unwrap(),
                fields: vec![("seed".into(), "0".into())],
            },
            predictor,
            interaction: interaction.into(),
        }
    }

    /// See: issue 20 (designs.fasta mixed in the ablation and repeated sequences).
    #[test]
    fn main_designs_are_distinct_ranked_and_renamed() {
        let all = [
            d("AR", 0.5, "quadratic"),
            d("AN", 0.9, "quadratic"),
            d("AR", 0.5, "quadratic"),
            d("WW", 2.0, "none"),
            d("AD", 0.7, "quadratic"),
        ];
        let main = ranked_unique(&all, |i| i == "quadratic", "design");
        let got: Vec<(String, String)> = main
            .iter()
            .map(|a| (a.id.clone(), a.sequence.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("design_0001".to_string(), "AN".to_string()),
                ("design_0002".into(), "AD".into()),
                ("design_0003".into(), "AR".into()),
            ]
        );
        let abl = ranked_unique(&all, |i| i != "quadratic", "ablation");
        assert_eq!(abl.len(), 1);
        assert_eq!(abl[0].id, "ablation_0001");
    }
}
