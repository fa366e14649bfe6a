//! CSV tables of sequences (`sequence,score` by default, column names configurable) via
//! the `csv` crate; errors carry path, line and, for residues, the column on that line.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{Annotated, ReadOptions, Record, ScoreRule, parse_score, write_atomic};
use crate::sequence::{ScoredSequences, Sequence};

/// Parse CSV bytes (header row required) into records; `path` labels errors.
///
/// ```
/// use em_protein::io::{csv::parse_csv, ReadOptions};
/// let opts = ReadOptions { sequence_column: "seq".into(), score_column: "y".into(), ..Default::default() };
/// let r = parse_csv(b"y,seq\n0.5,ARN\n", "t.csv".as_ref(), &opts).unwrap();
/// assert_eq!((r[0].sequence.to_string(), r[0].score, r[0].line), ("ARN".into(), Some(0.5), 2));
/// ```
pub fn parse_csv(bytes: &[u8], path: &Path, options: &ReadOptions) -> Result<Vec<Record>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let csv_err = |e: ::csv::Error| Error::Format {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line() as usize),
        message: format!("malformed CSV: {e}"),
    };
    let header = reader.headers().map_err(csv_err)?.clone();
    // A repeated column name would make "the score column" ambiguous.
    for (i, h) in header.iter().enumerate() {
        if let Some(j) = header.iter().take(i).position(|g| g.trim() == h.trim()) {
            return Err(Error::Format {
                path: path.to_path_buf(),
                line: 1,
                message: format!(
                    "column '{}' appears twice in the header (columns {} and {})",
                    h.trim(),
                    j + 1,
                    i + 1
                ),
            });
        }
    }
    let find = |name: &str| header.iter().position(|h| h.trim() == name);
    let missing = |name: &str| Error::MissingColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
        header: header.iter().collect::<Vec<_>>().join(","),
    };
    let seq_col =
        find(&options.sequence_column).ok_or_else(|| missing(&options.sequence_column))?;
    let score_col = match (find(&options.score_column), options.score) {
        (_, ScoreRule::Ignored) => None,
        (Some(c), _) => Some(c),
        (None, ScoreRule::Optional) => None,
        (None, ScoreRule::Required) => return Err(missing(&options.score_column)),
    };
    let id_col = find("id");
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(csv_err)?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let field = row.get(seq_col).unwrap_or("");
        // Column on the line: preceding fields plus their commas (exact for unquoted fields).
        let offset: usize = (0..seq_col)
            .map(|i| row.get(i).map_or(0, str::len) + 1)
            .sum();
        let sequence = Sequence::parse(field.as_bytes()).map_err(|e| Error::UnknownResidue {
            path: path.to_path_buf(),
            line,
            column: offset + e.column,
            residue: e.residue,
        })?;
        if sequence.is_empty() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                line,
                message: format!("empty sequence in column '{}'", options.sequence_column),
            });
        }
        let score = match score_col.map(|c| row.get(c).unwrap_or("")) {
            None => None,
            Some(v) if v.trim().is_empty() => match options.score {
                ScoreRule::Optional | ScoreRule::Ignored => None,
                ScoreRule::Required => {
                    return Err(Error::MissingScore {
                        path: path.to_path_buf(),
                        line,
                        field: format!("score in column '{}'", options.score_column),
                    });
                }
            },
            Some(v) => Some(parse_score(v, path, line, &options.score_column)?),
        };
        let id = id_col
            .and_then(|c| row.get(c))
            .map_or_else(|| format!("row_{line}"), str::to_string);
        out.push(Record {
            id,
            sequence,
            score,
            line,
        });
    }
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Write a `sequence,score` table atomically (the format `emdesign data split` writes).
///
/// ```
/// use em_protein::io::csv::write_scored_csv;
/// use em_protein::sequence::ScoredSequences;
/// let t = ScoredSequences::new(vec!["AR".parse().unwrap()], vec![1.25]).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("split.csv");
/// write_scored_csv(&p, &t).unwrap();
/// assert_eq!(std::fs::read_to_string(&p).unwrap(), "sequence,score\nAR,1.25\n");
/// ```
pub fn write_scored_csv(path: &Path, table: &ScoredSequences) -> Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "sequence,score")?;
        for (s, y) in table.sequences().iter().zip(table.scores()) {
            writeln!(w, "{s},{y}")?;
        }
        Ok(())
    })
}

/// Write annotated sequences as CSV (`id,sequence,<keys>`) atomically; every record must
/// carry the same annotation keys in the same order as the first.
///
/// ```
/// use em_protein::io::{Annotated, csv::write_csv};
/// let r = Annotated { id: "design_0001".into(), sequence: "AR".parse().unwrap(),
///     fields: vec![("oracle".into(), "0.62".into()), ("seed".into(), "3".into())] };
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("d.csv");
/// write_csv(&p, &[r]).unwrap();
/// assert_eq!(std::fs::read_to_string(&p).unwrap(), "id,sequence,oracle,seed\ndesign_0001,AR,0.62,3\n");
/// ```
pub fn write_csv(path: &Path, records: &[Annotated]) -> Result<()> {
    let keys: Vec<&str> = records
        .first()
        .map(|r| r.fields.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    for r in records {
        let these: Vec<&str> = r.fields.iter().map(|(k, _)| k.as_str()).collect();
        if these != keys {
            return Err(Error::InvalidSetting {
                field: format!("annotations of '{}'", r.id),
                value: these.join(","),
                why: format!(
                    "CSV columns must match the first record's: {}",
                    keys.join(",")
                ),
            });
        }
    }
    write_atomic(path, |w| {
        let mut csv = ::csv::Writer::from_writer(w);
        let header = ["id", "sequence"].into_iter().chain(keys.iter().copied());
        csv.write_record(header)?;
        for r in records {
            let seq = r.sequence.to_string();
            let row = [r.id.as_str(), seq.as_str()]
                .into_iter()
                .chain(r.fields.iter().map(|(_, v)| v.as_str()));
            csv.write_record(row)?;
        }
        csv.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residue_column_counts_preceding_fields() {
        let opts = ReadOptions::default();
        let e = parse_csv(b"score,sequence\n1.0,ARXN\n", Path::new("f.csv"), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.csv:2:7: unknown residue 'X'"), "{e}");
    }

    #[test]
    fn optional_scores_and_id_column() {
        let opts = ReadOptions {
            score: ScoreRule::Optional,
            ..Default::default()
        };
        let r = parse_csv(b"id,sequence\nd1,AR\n", Path::new("f.csv"), &opts).unwrap();
        assert_eq!((r[0].id.as_str(), r[0].score), ("d1", None));
    }

    /// See: issue 20. A repeated header column was accepted (which one is the score?), and
    /// a NaN in a score column that is not used blocked `oracle`.
    #[test]
    fn repeated_columns_are_refused_and_ignored_scores_are_not_read() {
        let e = parse_csv(
            b"sequence,score,score\nAR,1,2\n",
            Path::new("f.csv"),
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("f.csv:1: column 'score' appears twice in the header (columns 2 and 3)"),
            "{e}"
        );
        let opts = ReadOptions {
            score: ScoreRule::Ignored,
            ..Default::default()
        };
        let r = parse_csv(b"sequence,score\nAR,NaN\n", Path::new("f.csv"), &opts).unwrap();
        assert_eq!(r[0].score, None);
    }
}
