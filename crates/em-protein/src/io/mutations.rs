//! Mutation lists against a wild type (`A109D:N145D`, `wt` for the wild type itself),
//! as the GFP raw data keeps them; the wild-type residue of every token is checked.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{Record, parse_score};
use crate::sequence::{Mutation, Sequence};

/// Settings for reading a mutation table.
#[derive(Debug, Clone, PartialEq)]
pub struct MutationOptions {
    /// Column holding the genotype (default `aa_genotype_native`, the GFP raw file's).
    pub genotype_column: String,
    /// Column holding the score (default `log_brightness`).
    pub score_column: String,
    /// What position the first residue of the wild type has in the tokens (0 or 1).
    pub index_base: usize,
    /// Separator between tokens (default `:`).
    pub separator: char,
    /// Skip genotypes with a stop codon (`*` as new residue) instead of failing; the number
    /// skipped is returned.
    pub skip_stops: bool,
}

impl Default for MutationOptions {
    fn default() -> Self {
        MutationOptions {
            genotype_column: "aa_genotype_native".into(),
            score_column: "log_brightness".into(),
            index_base: 0,
            separator: ':',
            skip_stops: true,
        }
    }
}

/// Parse a genotype like `A109D:N145D` (or `wt`) into mutations; the error says why.
///
/// ```
/// use em_protein::io::mutations::parse_genotype;
/// let m = parse_genotype("A1D:R2W", ':', 1).unwrap();
/// assert_eq!((m[0].position, m[1].position), (0, 1));
/// assert!(parse_genotype("wt", ':', 1).unwrap().is_empty());
/// assert!(parse_genotype("A1D::R2W", ':', 1).is_err());
/// ```
pub fn parse_genotype(
    genotype: &str,
    separator: char,
    index_base: usize,
) -> Result<Vec<Mutation>, (String, String)> {
    let g = genotype.trim();
    if g.eq_ignore_ascii_case("wt") {
        return Ok(Vec::new());
    }
    g.split(separator)
        .map(|t| Mutation::parse(t.trim(), index_base).map_err(|why| (t.to_string(), why)))
        .collect()
}

/// Apply a genotype to the wild type, naming file, line and token on any failure.
///
/// ```
/// use em_protein::io::mutations::apply_genotype;
/// let wt = "MSKG".parse().unwrap();
/// let s = apply_genotype(&wt, "S1A:G3W", ':', 0, "m.csv".as_ref(), 2).unwrap();
/// assert_eq!(s.to_string(), "MAKW");
/// let e = apply_genotype(&wt, "K1A", ':', 0, "m.csv".as_ref(), 2).unwrap_err();
/// assert_eq!(e.to_string(), "m.csv:2: mutation 'K1A': wild type has 'S' at position 1, not 'K'");
/// ```
pub fn apply_genotype(
    wild_type: &Sequence,
    genotype: &str,
    separator: char,
    index_base: usize,
    path: &Path,
    line: usize,
) -> Result<Sequence> {
    let mutations = parse_genotype(genotype, separator, index_base).map_err(|(token, why)| {
        Error::BadMutation {
            path: path.to_path_buf(),
            line,
            token,
            why,
        }
    })?;
    wild_type.apply(&mutations).map_err(|k| {
        let m = mutations[k];
        let token = m.display(index_base);
        match wild_type.indices().get(m.position) {
            Some(&found) => Error::WildTypeMismatch {
                path: path.to_path_buf(),
                line,
                token,
                position: m.position + index_base,
                expected: crate::alphabet::residue_letter(m.wild) as char,
                found: crate::alphabet::residue_letter(found) as char,
            },
            None => Error::BadMutation {
                path: path.to_path_buf(),
                line,
                token,
                why: format!(
                    "position is past the end of the wild type (length {})",
                    wild_type.len()
                ),
            },
        }
    })
}

/// Read a CSV of genotypes and scores (gzip allowed) and apply each genotype to the wild
/// type. Returns the records and the number of stop-codon genotypes skipped.
///
/// ```
/// use em_protein::io::mutations::{read_mutations, MutationOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("m.csv");
/// std::fs::write(&p, "mut,y\nwt,3.7\nA1D,1.3\nA1*,1.2\n").unwrap();
/// let opts = MutationOptions { genotype_column: "mut".into(), score_column: "y".into(), index_base: 1, ..Default::default() };
/// let (r, stops) = read_mutations(&p, &"AR".parse().unwrap(), &opts).unwrap();
/// assert_eq!((r.len(), stops, r[1].sequence.to_string()), (2, 1, "DR".to_string()));
/// ```
pub fn read_mutations(
    path: &Path,
    wild_type: &Sequence,
    options: &MutationOptions,
) -> Result<(Vec<Record>, usize)> {
    let bytes = crate::io::read_bytes(path)?;
    parse_mutations(&bytes, path, wild_type, options)
}

/// [`read_mutations`] on bytes already in memory; `path` only labels errors.
pub fn parse_mutations(
    bytes: &[u8],
    path: &Path,
    wild_type: &Sequence,
    options: &MutationOptions,
) -> Result<(Vec<Record>, usize)> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut reader = ::csv::ReaderBuilder::new().from_reader(bytes);
    let csv_err = |e: ::csv::Error| Error::Format {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line() as usize),
        message: format!("malformed CSV: {e}"),
    };
    let header = reader.headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                header: header.iter().collect::<Vec<_>>().join(","),
            })
    };
    let (g_col, y_col) = (col(&options.genotype_column)?, col(&options.score_column)?);
    let (mut out, mut stops) = (Vec::new(), 0);
    for row in reader.records() {
        let row = row.map_err(csv_err)?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let genotype = row.get(g_col).unwrap_or("");
        if options.skip_stops && genotype.contains('*') {
            stops += 1;
            continue;
        }
        let sequence = apply_genotype(
            wild_type,
            genotype,
            options.separator,
            options.index_base,
            path,
            line,
        )?;
        let score = parse_score(
            row.get(y_col).unwrap_or(""),
            path,
            line,
            &options.score_column,
        )?;
        out.push(Record {
            id: genotype.to_string(),
            sequence,
            score: Some(score),
            line,
        });
    }
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((out, stops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_end_and_bad_tokens_are_named() {
        let wt: Sequence = "AR".parse().unwrap();
        let p = Path::new("m.csv");
        let e = apply_genotype(&wt, "A5D", ':', 0, p, 4)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m.csv:4: bad mutation 'A5D': position is past the end of the wild type (length 2)"
        );
        let e = apply_genotype(&wt, "A0D:Rx", ':', 0, p, 4)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m.csv:4: bad mutation 'Rx'"), "{e}");
    }
}
