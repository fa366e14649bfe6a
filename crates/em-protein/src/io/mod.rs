//! Reading and writing sequence files the way labs keep them: CSV, FASTA (rust-bio) and
//! mutation lists, gzip read transparently, writes atomic. Errors name file, line, column.

pub mod csv;
pub mod fasta;
pub mod mutations;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};
use crate::sequence::{ScoredSequences, Sequence};

/// One sequence read from a file, with its optional score and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// FASTA id, or `row_<line>` for CSV rows without an id column.
    pub id: String,
    /// The checked sequence.
    pub sequence: Sequence,
    /// The score, when the file has one.
    pub score: Option<f64>,
    /// 1-based line where the record starts (FASTA header line, CSV row line).
    pub line: usize,
}

/// Which sequence lengths a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LengthRule {
    /// Any length (designs of mixed length).
    #[default]
    Any,
    /// Every sequence as long as the first one.
    SameAsFirst,
    /// Exactly this many residues (a task's length: GFP 237, AAV 28).
    Exactly(usize),
}

/// Whether a score is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreRule {
    /// Every record must carry a finite score.
    #[default]
    Required,
    /// Scores are read when present (and must then be finite).
    Optional,
    /// Scores are not read at all: a score column or header key is left alone, whatever it
    /// holds (scoring files with the oracle, where a stale or NaN score must not block).
    Ignored,
}

/// What to do with a sequence that occurs more than once in a scored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Keep every row as it is (the published ground truths keep their duplicates; GGS's
    /// split sizes count them).
    Keep,
    /// Merge each repeated sequence into one row with the mean score, at its first
    /// position; [`ReadReport::merged`] counts the rows removed.
    #[default]
    Average,
    /// Merge repeats with identical scores; a repeat with a different score is an error.
    Error,
}

/// Settings for the readers (column names, score key, checks).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// CSV column holding the sequence (default `sequence`).
    pub sequence_column: String,
    /// CSV column, or FASTA header `key=value` key, holding the score (default `score`).
    pub score_column: String,
    /// Whether scores are required.
    pub score: ScoreRule,
    /// Accepted lengths.
    pub length: LengthRule,
    /// Duplicate handling in [`read_scored`].
    pub duplicates: DuplicatePolicy,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            sequence_column: "sequence".into(),
            score_column: "score".into(),
            score: ScoreRule::Required,
            length: LengthRule::Any,
            duplicates: DuplicatePolicy::Average,
        }
    }
}

/// What a scored read did besides parsing: rows read and duplicates merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadReport {
    /// Rows in the file.
    pub rows: usize,
    /// Rows removed by merging duplicates (0 under [`DuplicatePolicy::Keep`]).
    pub merged: usize,
    /// Distinct sequences whose repeats had different scores (averaged).
    pub conflicting: usize,
}

/// Read a whole file, gunzipping it when it starts with the gzip magic bytes `1f 8b`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x.txt");
/// std::fs::write(&p, b"hello").unwrap();
/// assert_eq!(em_protein::io::read_bytes(&p).unwrap(), b"hello");
/// ```
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decompress(path, raw)
}

/// Gunzip `raw` if it starts with the gzip magic bytes, else return it unchanged.
pub fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Read FASTA or CSV (told apart by a leading `>`), gzipped or not, into records checked
/// against `options` (residues, scores, lengths; no duplicate handling).
///
/// ```
/// use em_protein::io::{read_records, ReadOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("d.fasta");
/// std::fs::write(&p, ">a score=1.5\nAR\nN\n>b score=2\nARV\n").unwrap();
/// let r = read_records(&p, &ReadOptions::default()).unwrap();
/// assert_eq!((r[0].sequence.to_string(), r[0].score), ("ARN".to_string(), Some(1.5)));
/// ```
pub fn read_records(path: &Path, options: &ReadOptions) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    parse_records(&bytes, path, options)
}

/// [`read_records`] on bytes already in memory; `path` only labels errors.
pub fn parse_records(bytes: &[u8], path: &Path, options: &ReadOptions) -> Result<Vec<Record>> {
    // A UTF-8 byte-order mark (Windows editors write one) is not part of the content.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let records = match first {
        None => {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        Some(b'>') => fasta::parse_fasta(bytes, path, options)?,
        Some(_) => csv::parse_csv(bytes, path, options)?,
    };
    check_lengths(&records, path, options.length)?;
    Ok(records)
}

/// Read a scored file into a fixed-length table, applying the duplicate policy.
///
/// ```
/// use em_protein::io::{read_scored, DuplicatePolicy, ReadOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("d.csv");
/// std::fs::write(&p, "sequence,score\nAR,1\nAN,2\nAR,3\n").unwrap();
/// let (t, report) = read_scored(&p, &ReadOptions::default()).unwrap();
/// assert_eq!(t.scores(), &[2.0, 2.0]); // AR averaged: (1 + 3) / 2
/// assert_eq!((report.rows, report.merged, report.conflicting), (3, 1, 1));
/// ```
pub fn read_scored(path: &Path, options: &ReadOptions) -> Result<(ScoredSequences, ReadReport)> {
    let bytes = read_bytes(path)?;
    parse_scored(&bytes, path, options)
}

/// [`read_scored`] on bytes already in memory; `path` only labels errors.
pub fn parse_scored(
    bytes: &[u8],
    path: &Path,
    options: &ReadOptions,
) -> Result<(ScoredSequences, ReadReport)> {
    let mut opts = options.clone();
    opts.score = ScoreRule::Required;
    if opts.length == LengthRule::Any {
        opts.length = LengthRule::SameAsFirst;
    }
    let records = parse_records(bytes, path, &opts)?;
    let (rows, report) = apply_duplicates(records, path, opts.duplicates)?;
    let (seqs, scores): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    let table = ScoredSequences::new(seqs, scores).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    Ok((table, report))
}

/// Apply a duplicate policy to scored records (each must have a score).
pub(crate) fn apply_duplicates(
    records: Vec<Record>,
    path: &Path,
    policy: DuplicatePolicy,
) -> Result<(Vec<(Sequence, f64)>, ReadReport)> {
    let mut report = ReadReport {
        rows: records.len(),
        ..ReadReport::default()
    };
    let score_of = |r: &Record| {
        r.score.ok_or_else(|| Error::MissingScore {
            path: path.to_path_buf(),
            line: r.line,
            field: "score".into(),
        })
    };
    if policy == DuplicatePolicy::Keep {
        let rows = records
            .into_iter()
            .map(|r| {
                let y = score_of(&r)?;
                Ok((r.sequence, y))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((rows, report));
    }
    // slot per distinct sequence: (sequence, sum, count, first score, first line, conflict)
    let mut slots: Vec<(Sequence, f64, usize, f64, usize, bool)> = Vec::new();
    let mut index: HashMap<Sequence, usize> = HashMap::new();
    for r in records {
        let y = score_of(&r)?;
        match index.get(&r.sequence) {
            Some(&k) => {
                let slot = &mut slots[k];
                if y != slot.3 {
                    if policy == DuplicatePolicy::Error {
                        return Err(Error::ConflictingDuplicate {
                            path: path.to_path_buf(),
                            line: r.line,
                            first_line: slot.4,
                            first_score: slot.3,
                            score: y,
                        });
                    }
                    slot.5 = true;
                }
                slot.1 += y;
                slot.2 += 1;
                report.merged += 1;
            }
            None => {
                index.insert(r.sequence.clone(), slots.len());
                slots.push((r.sequence, y, 1, y, r.line, false));
            }
        }
    }
    report.conflicting = slots.iter().filter(|s| s.5).count();
    let rows = slots
        .into_iter()
        .map(|(s, sum, n, ..)| (s, sum / n as f64))
        .collect();
    Ok((rows, report))
}

fn check_lengths(records: &[Record], path: &Path, rule: LengthRule) -> Result<()> {
    let (expected, what) = match (rule, records.first()) {
        (_, None) => {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        (LengthRule::Any, _) => return Ok(()),
        (LengthRule::Exactly(n), _) => (n, String::new()),
        (LengthRule::SameAsFirst, Some(r)) => (
            r.sequence.len(),
            format!(" (the length of the first sequence, line {})", r.line),
        ),
    };
    match records.iter().find(|r| r.sequence.len() != expected) {
        Some(r) => Err(Error::Ragged {
            path: path.to_path_buf(),
            line: r.line,
            found: r.sequence.len(),
            expected,
            what,
        }),
        None => Ok(()),
    }
}

/// Parse a score cell or header value: finite `f64`, else [`Error::BadScore`].
pub(crate) fn parse_score(value: &str, path: &Path, line: usize, field: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(y) if y.is_finite() => Ok(y),
        _ => Err(Error::BadScore {
            path: path.to_path_buf(),
            line,
            field: field.to_string(),
            value: value.to_string(),
        }),
    }
}

/// A sequence to write, with an id and ordered `key=value` annotations (scores, seed,
/// provenance).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotated {
    /// Identifier, e.g. `design_0001`.
    pub id: String,
    /// The sequence.
    pub sequence: Sequence,
    /// Ordered annotations, e.g. `[("predictor", "0.81"), ("seed", "3")]`.
    pub fields: Vec<(String, String)>,
}

/// A temp file `.<name>.<random>.tmp` in `dir` to be renamed over `dir/name`, created with
/// the mode a plain create gives (`0666` less the umask), not `tempfile`'s private `0600`:
/// the one place every atomic write of the workspace makes its temp file.
pub fn temp_file_for(dir: &Path, name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Applied at creation, so the umask narrows it as for any new file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Write a file atomically: `body` writes into a temporary file in the same directory
/// (`.<name>.<random>.tmp`), which is renamed over `path` only after everything was written
/// and flushed. The file gets the mode a plain create would give it (`0666` less the umask,
/// e.g. `0644`), not the temp file's private `0600`, so colleagues can read results. A
/// failed write leaves neither the temp file nor a partial `path`; a `path` that is a
/// folder is refused before anything is written.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("out.txt");
/// em_protein::io::write_atomic(&p, |w| w.write_all(b"ok")).unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"ok");
/// ```
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    if path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a folder; give the path of a file to write",
            ),
        ));
    }
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = temp_file_for(&dir, &name).map_err(|e| Error::io(&dir, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        body(&mut w).map_err(|e| Error::io(path, e))?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.csv"); // no .gz suffix on purpose
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"sequence,score\nAR,1.5\n").unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        let r = read_records(&p, &opts()).unwrap();
        assert_eq!(r[0].score, Some(1.5));
    }

    /// See: issue 20. A FASTA saved with a UTF-8 byte-order mark was read as CSV.
    #[test]
    fn a_byte_order_mark_is_skipped() {
        let p = Path::new("bom.fasta");
        let r = parse_records(b"\xEF\xBB\xBF>a score=1\nARN\n", p, &opts()).unwrap();
        assert_eq!(
            (r[0].id.as_str(), r[0].sequence.to_string()),
            ("a", "ARN".into())
        );
        let r = parse_records(b"\xEF\xBB\xBFsequence,score\nAR,2\n", p, &opts()).unwrap();
        assert_eq!(r[0].score, Some(2.0));
    }

    #[test]
    fn duplicate_policies() {
        let csv = b"sequence,score\nAR,1\nAN,2\nAR,1\nAN,4\n";
        let p = Path::new("t.csv");
        let keep = ReadOptions {
            duplicates: DuplicatePolicy::Keep,
            ..opts()
        };
        let (t, rep) = parse_scored(csv, p, &keep).unwrap();
        assert_eq!((t.len(), rep.merged), (4, 0));
        let (t, rep) = parse_scored(csv, p, &opts()).unwrap();
        assert_eq!(t.scores(), &[1.0, 3.0]);
        assert_eq!((rep.merged, rep.conflicting), (2, 1));
        let err = ReadOptions {
            duplicates: DuplicatePolicy::Error,
            ..opts()
        };
        let e = parse_scored(csv, p, &err).unwrap_err().to_string();
        assert!(e.starts_with("t.csv:5: sequence repeats line 3"), "{e}");
        // identical repeats merge silently under Error
        let (t, _) = parse_scored(b"sequence,score\nAR,1\nAR,1\n", p, &err).unwrap();
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn atomic_write_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.txt");
        write_atomic(&p, |w| w.write_all(b"1")).unwrap();
        let failed = write_atomic(&p, |_| Err(std::io::Error::other("boom")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"1");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A folder as the target is refused and leaves nothing behind (issue 20).
        let e = write_atomic(dir.path(), |w| w.write_all(b"x")).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// See: issue 20. Written files get `0666 & !umask`, not the temp file's 0600. The umask
    /// is read without changing it: a plain `File::create` gets exactly that mode.
    #[cfg(unix)]
    #[test]
    fn atomic_write_gives_the_umask_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let want = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        let p = dir.path().join("o.txt");
        write_atomic(&p, |w| w.write_all(b"1")).unwrap();
        let got = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(format!("{got:o}"), format!("{want:o}"));
    }
}
