//! Every bad input file -> one exact error message naming file, line (and column where
//! there is one). Fixtures live in `tests/fixtures/`.

use std::io::Write;
use std::path::PathBuf;

use em_protein::io::mutations::{MutationOptions, read_mutations};
use em_protein::io::{DuplicatePolicy, LengthRule, ReadOptions, read_records, read_scored};
use em_protein::sequence::Sequence;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The scored-read error for a fixture, with its path replaced by `FILE`.
fn scored_err(name: &str, options: &ReadOptions) -> String {
    let p = fixture(name);
    let e = read_scored(&p, options).unwrap_err().to_string();
    e.replace(&p.display().to_string(), "FILE")
}

fn default() -> ReadOptions {
    ReadOptions::default()
}

#[test]
fn bad_residue_in_fasta_names_line_and_column() {
    assert_eq!(
        scored_err("bad_residue.fasta", &default()),
        "FILE:5:3: unknown residue 'X' (expected one of ARNDCQEGHILKMFPSTWYV)"
    );
}

#[test]
fn bad_residue_in_csv_names_line_and_column() {
    assert_eq!(
        scored_err("bad_residue.csv", &default()),
        "FILE:3:3: unknown residue '-' (expected one of ARNDCQEGHILKMFPSTWYV)"
    );
}

#[test]
fn bad_residue_in_gzipped_csv_is_located_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&std::fs::read(fixture("bad_residue.csv")).unwrap())
        .unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    let e = read_scored(&p, &default()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:3:3: unknown residue '-' (expected one of ARNDCQEGHILKMFPSTWYV)",
            p.display()
        )
    );
}

#[test]
fn ragged_lengths() {
    assert_eq!(
        scored_err("ragged.csv", &default()),
        "FILE:3: sequence has length 5, expected 4 (the length of the first sequence, line 2)"
    );
    let task = ReadOptions {
        length: LengthRule::Exactly(4),
        ..default()
    };
    assert_eq!(
        scored_err("ragged.fasta", &task),
        "FILE:3: sequence has length 3, expected 4"
    );
    // Designs of mixed length are fine when no fixed length is asked for.
    assert_eq!(
        read_records(&fixture("ragged.csv"), &default())
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn nan_non_numeric_infinite_and_missing_scores() {
    assert_eq!(
        scored_err("nan_score.csv", &default()),
        "FILE:3: score 'NaN' is not a finite number"
    );
    assert_eq!(
        scored_err("non_numeric_score.csv", &default()),
        "FILE:2: score 'high' is not a finite number"
    );
    assert_eq!(
        scored_err("infinite_score.fasta", &default()),
        "FILE:1: score 'inf' is not a finite number"
    );
    assert_eq!(
        scored_err("missing_score.csv", &default()),
        "FILE:2: missing score in column 'score'"
    );
    assert_eq!(
        scored_err("missing_score.fasta", &default()),
        "FILE:1: missing 'score=' in the header of record 1 ('a')"
    );
}

#[test]
fn empty_files() {
    assert_eq!(
        scored_err("empty.csv", &default()),
        "FILE: no sequences (empty file)"
    );
    assert_eq!(
        scored_err("header_only.csv", &default()),
        "FILE: no sequences (empty file)"
    );
}

#[test]
fn missing_column_lists_the_header() {
    assert_eq!(
        scored_err("missing_column.csv", &default()),
        "FILE:1: missing column 'sequence' (header has: seq,fitness)"
    );
    let renamed = ReadOptions {
        sequence_column: "seq".into(),
        score_column: "fitness".into(),
        ..default()
    };
    let (t, _) = read_scored(&fixture("missing_column.csv"), &renamed).unwrap();
    assert_eq!(t.scores(), &[1.0]);
}

#[test]
fn conflicting_duplicates_error_or_average() {
    let strict = ReadOptions {
        duplicates: DuplicatePolicy::Error,
        ..default()
    };
    assert_eq!(
        scored_err("conflicting_duplicates.csv", &strict),
        "FILE:4: sequence repeats line 2 with a different score (3 vs 1); \
         use the 'average' duplicate policy to merge duplicates"
    );
    let (t, report) = read_scored(&fixture("conflicting_duplicates.csv"), &default()).unwrap();
    assert_eq!(t.scores(), &[2.0, 2.0]);
    assert_eq!((report.rows, report.merged, report.conflicting), (3, 1, 1));
}

fn mutation_err(name: &str) -> String {
    let p = fixture(name);
    let wt: Sequence = "ARND".parse().unwrap();
    let e = read_mutations(&p, &wt, &MutationOptions::default())
        .unwrap_err()
        .to_string();
    e.replace(&p.display().to_string(), "FILE")
}

#[test]
fn bad_mutation_token() {
    assert_eq!(
        mutation_err("bad_mutation.csv"),
        "FILE:3: bad mutation 'R1': expected <wild-type residue><position><new residue>, e.g. A109D"
    );
}

#[test]
fn wild_type_mismatch_names_the_entry() {
    assert_eq!(
        mutation_err("wild_type_mismatch.csv"),
        "FILE:4: mutation 'K1D': wild type has 'R' at position 1, not 'K'"
    );
}

#[test]
fn missing_file_names_it() {
    let p = fixture("no_such_file.csv");
    let e = read_scored(&p, &default()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: ", p.display())), "{e}");
}
