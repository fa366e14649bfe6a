//! FASTA via rust-bio's `bio::io::fasta`, wrapped so errors name file, line, column,
//! record number and id (rust-bio reports no lines: we index line starts ourselves).
//! An optional score rides in the header as a `score=1.23` token.

use std::path::Path;

use bio::io::fasta;

use crate::error::{Error, Result};
use crate::io::{Annotated, ReadOptions, Record, ScoreRule, parse_score, write_atomic};
use crate::sequence::Sequence;

/// Where one record's lines are: its header line and, per sequence line, (line number,
/// offset of the line's first residue within the record's sequence).
#[derive(Debug, Default)]
struct RecordLines {
    header: usize,
    seq_lines: Vec<(usize, usize)>,
}

/// Index header and sequence lines the way rust-bio reads them (trailing whitespace of
/// each sequence line dropped, lines concatenated).
fn index_lines(bytes: &[u8]) -> Vec<RecordLines> {
    let mut out: Vec<RecordLines> = Vec::new();
    let mut offset = 0;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.first() == Some(&b'>') {
            out.push(RecordLines {
                header: i + 1,
                seq_lines: Vec::new(),
            });
            offset = 0;
        } else if let Some(rec) = out.last_mut() {
            rec.seq_lines.push((i + 1, offset));
            offset += line.trim_ascii_end().len();
        }
    }
    out
}

/// Map a 0-based position in a record's sequence to (line, 1-based column).
fn locate(lines: &RecordLines, position: usize) -> (usize, usize) {
    let k = lines
        .seq_lines
        .partition_point(|&(_, start)| start <= position)
        .saturating_sub(1);
    match lines.seq_lines.get(k) {
        Some(&(line, start)) => (line, position - start + 1),
        None => (lines.header, 1),
    }
}

/// Parse FASTA bytes into records; `path` labels errors. The header's first word is the
/// id; a `key=value` token whose key is `options.score_column` is the score.
///
/// ```
/// use em_protein::io::{fasta::parse_fasta, ReadOptions};
/// let r = parse_fasta(b">d1 seed=3 score=0.5\nAR\nNd\n", "x.fa".as_ref(), &ReadOptions::default()).unwrap();
/// assert_eq!((r[0].id.as_str(), r[0].sequence.to_string(), r[0].score), ("d1", "ARND".into(), Some(0.5)));
/// let e = parse_fasta(b">d1 score=1\nAR\nNB\n", "x.fa".as_ref(), &ReadOptions::default()).unwrap_err();
/// assert!(e.to_string().starts_with("x.fa:3:2: unknown residue 'B'"));
/// ```
pub fn parse_fasta(bytes: &[u8], path: &Path, options: &ReadOptions) -> Result<Vec<Record>> {
    let index = index_lines(bytes);
    let mut out = Vec::new();
    for (k, rec) in fasta::Reader::new(bytes).records().enumerate() {
        let lines = index.get(k);
        let header_line = lines.map_or(1, |l| l.header);
        let rec = rec.map_err(|e| Error::Format {
            path: path.to_path_buf(),
            line: header_line,
            message: format!("record {}: {e}", k + 1),
        })?;
        let sequence = Sequence::parse(rec.seq()).map_err(|e| {
            let (line, column) = lines.map_or((header_line, e.column), |l| locate(l, e.column - 1));
            Error::UnknownResidue {
                path: path.to_path_buf(),
                line,
                column,
                residue: e.residue,
            }
        })?;
        if sequence.is_empty() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                line: header_line,
                message: format!("record {} ('{}') has an empty sequence", k + 1, rec.id()),
            });
        }
        let token = rec.desc().unwrap_or("").split_whitespace().find_map(|t| {
            t.split_once('=')
                .filter(|(key, _)| *key == options.score_column)
                .map(|(_, v)| v)
        });
        let score = match (token, options.score) {
            (_, ScoreRule::Ignored) => None,
            (Some(v), _) => Some(parse_score(v, path, header_line, &options.score_column)?),
            (None, ScoreRule::Optional) => None,
            (None, ScoreRule::Required) => {
                return Err(Error::MissingScore {
                    path: path.to_path_buf(),
                    line: header_line,
                    field: format!(
                        "'{}=' in the header of record {} ('{}')",
                        options.score_column,
                        k + 1,
                        rec.id()
                    ),
                });
            }
        };
        out.push(Record {
            id: rec.id().to_string(),
            sequence,
            score,
            line: header_line,
        });
    }
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Write annotated sequences as FASTA atomically, one line per sequence, header
/// `>id key=value key=value ...` (scores, seed, provenance).
///
/// ```
/// use em_protein::io::{Annotated, fasta::write_fasta};
/// let r = Annotated { id: "design_0001".into(), sequence: "ARN".parse().unwrap(),
///     fields: vec![("predictor".into(), "0.81".into()), ("oracle".into(), "0.62".into()), ("seed".into(), "3".into())] };
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("d.fasta");
/// write_fasta(&p, &[r]).unwrap();
/// assert_eq!(std::fs::read_to_string(&p).unwrap(), ">design_0001 predictor=0.81 oracle=0.62 seed=3\nARN\n");
/// ```
pub fn write_fasta(path: &Path, records: &[Annotated]) -> Result<()> {
    for r in records {
        let bad_id = r.id.is_empty() || r.id.contains(char::is_whitespace);
        let bad_field = r.fields.iter().find(|(k, v)| {
            k.is_empty() || k.contains(['=', ' ', '\t', '\n']) || v.contains(char::is_whitespace)
        });
        if bad_id || bad_field.is_some() {
            return Err(Error::InvalidSetting {
                field: format!("FASTA header of '{}'", r.id),
                value: format!(
                    "{:?}",
                    bad_field.map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()))
                ),
                why: "ids and annotation keys/values must be non-empty and free of whitespace \
                      (keys also of '=')"
                    .into(),
            });
        }
    }
    write_atomic(path, |w| {
        let mut writer = fasta::Writer::new(w);
        for r in records {
            let desc: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let desc = desc.join(" ");
            let desc = (!desc.is_empty()).then_some(desc.as_str());
            writer.write(&r.id, desc, &r.sequence.to_letters())?;
        }
        writer.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_spans_wrapped_lines() {
        let bytes = b">a\nAR \nND\r\n>b\nC\n";
        let idx = index_lines(bytes);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx[0].header, 1);
        assert_eq!(locate(&idx[0], 0), (2, 1));
        assert_eq!(locate(&idx[0], 3), (3, 2));
        assert_eq!(locate(&idx[1], 0), (5, 1));
    }

    #[test]
    fn second_record_error_names_its_line() {
        let e = parse_fasta(
            b">a score=1\nAR\n>b score=2\nARN\nAZ\n",
            Path::new("f.fa"),
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("f.fa:5:2: unknown residue 'Z'"), "{e}");
    }

    #[test]
    fn round_trip_through_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.fa");
        let rec = Annotated {
            id: "x".into(),
            sequence: "WYV".parse().unwrap(),
            fields: vec![("score".into(), "-1.5".into())],
        };
        write_fasta(&p, std::slice::from_ref(&rec)).unwrap();
        let back = crate::io::read_records(&p, &ReadOptions::default()).unwrap();
        assert_eq!(
            (back[0].sequence.clone(), back[0].score),
            (rec.sequence, Some(-1.5))
        );
    }
}
