//! libFuzzer target over every reader a user's file reaches (CSV, FASTA, mutation lists,
//! genotype tokens, the scored-table reader with each duplicate policy): any input must give
//! records or an error whose message can be printed, never a panic.
#![no_main]

use std::path::Path;

use em_protein::constraints::ConstraintsConfig;
use em_protein::io::mutations::{MutationOptions, parse_genotype, parse_mutations};
use em_protein::io::{DuplicatePolicy, LengthRule, ReadOptions, ScoreRule, parse_records, parse_scored};
use em_protein::sequence::Sequence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, bytes)) = input.split_first() else {
        return;
    };
    let path = Path::new("fuzz.csv");
    let options = ReadOptions {
        score: [ScoreRule::Required, ScoreRule::Optional, ScoreRule::Ignored][(selector % 3) as usize],
        length: [LengthRule::Any, LengthRule::SameAsFirst, LengthRule::Exactly(4)]
            [((selector / 3) % 3) as usize],
        duplicates: [
            DuplicatePolicy::Keep,
            DuplicatePolicy::Average,
            DuplicatePolicy::Error,
        ][((selector / 9) % 3) as usize],
        ..ReadOptions::default()
    };
    match selector >> 6 {
        0 => {
            if let Err(e) = parse_records(bytes, path, &options) {
                let _ = e.to_string();
            }
        }
        1 => {
            if let Err(e) = parse_scored(bytes, path, &options) {
                let _ = e.to_string();
            }
        }
        2 => {
            let wild_type = Sequence::parse(b"MSKGEELFTG").expect("a valid wild type");
            let mutation_options = MutationOptions {
                genotype_column: "mutations".into(),
                score_column: "score".into(),
                index_base: usize::from(selector & 1),
                skip_stops: selector & 2 != 0,
                ..MutationOptions::default()
            };
            if let Err(e) = parse_mutations(bytes, path, &wild_type, &mutation_options) {
                let _ = e.to_string();
            }
        }
        _ => {
            // Genotype tokens, and the constraint fields (`fixed = "1-10,25"`, residue sets)
            // split from the same text at the first two newlines.
            let text = String::from_utf8_lossy(bytes);
            let _ = parse_genotype(&text, ':', usize::from(selector & 1));
            let mut parts = text.splitn(3, '\n');
            let config = ConstraintsConfig {
                fixed: parts.next().unwrap_or_default().to_string(),
                banned: parts.next().unwrap_or_default().to_string(),
                allowed: [(parts.next().unwrap_or_default().to_string(), "AG".to_string())]
                    .into_iter()
                    .collect(),
                max_mutations: Some(usize::from(selector & 7)),
            };
            let wild_type = Sequence::parse(b"MSKGEELFTG").expect("a valid wild type");
            if let Ok(constraints) = config.check(&wild_type, usize::from(selector & 1)) {
                let _ = constraints.violations(&wild_type);
            }
        }
    }
});
