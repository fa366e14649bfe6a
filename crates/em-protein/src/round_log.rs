//! `rounds.csv`, one row per lab round: designs proposed, distinct sequences measured so
//! far, the best measured score so far and the best predicted score of the round's designs.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io;
use crate::rounds::History;
use crate::sequence::{ScoredSequences, Sequence};

/// One row of `rounds.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRow {
    /// The round (0: the plain run on the original data).
    pub round: usize,
    /// Designs proposed by this round (its `designs.csv`).
    pub batch_size: usize,
    /// Distinct sequences measured so far, the original data included.
    pub n_measured_total: usize,
    /// Best measured score so far (repeats averaged), in the user's units.
    pub best_measured: f64,
    /// Best predicted score of this round's designs (NaN when it proposed none).
    pub best_predicted: f64,
}

/// Column names of `rounds.csv`, in order.
pub const ROUND_COLUMNS: [&str; 5] = [
    "round",
    "batch_size",
    "n_measured_total",
    "best_measured",
    "best_predicted",
];

impl RoundRow {
    /// The row of `round`: its `history` (everything measured up to it) and the designs it
    /// proposed (`(sequence, predicted score)`).
    pub fn new(round: usize, history: &History, designs: &[(Sequence, f64)]) -> Self {
        let merged = history.merged();
        let best = |v: &mut dyn Iterator<Item = f64>| v.fold(f64::NAN, f64::max);
        Self {
            round,
            batch_size: designs.len(),
            n_measured_total: merged.as_ref().map_or(0, ScoredSequences::len),
            best_measured: merged
                .as_ref()
                .map_or(f64::NAN, |m| best(&mut m.scores().iter().copied())),
            best_predicted: best(&mut designs.iter().map(|d| d.1)),
        }
    }
}

/// Reads `rounds.csv` (errors name file:line and the column); rounds must run 0, 1, 2, ...
pub fn read_rounds(path: &Path) -> Result<Vec<RoundRow>> {
    let bytes = io::read_bytes(path)?;
    let fmt = |line: usize, message: String| Error::Format {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = ::csv::Reader::from_reader(&bytes[..]);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fmt(1, format!("malformed CSV: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header != ROUND_COLUMNS {
        return Err(fmt(
            1,
            format!(
                "header is `{}`, expected `{}`",
                header.join(","),
                ROUND_COLUMNS.join(",")
            ),
        ));
    }
    let mut out: Vec<RoundRow> = Vec::new();
    for r in reader.records() {
        let r = r.map_err(|e| fmt(0, format!("malformed CSV: {e}")))?;
        let line = r.position().map_or(0, |p| p.line() as usize);
        let cell = |i: usize| r.get(i).unwrap_or("").trim();
        let int = |i: usize| {
            cell(i).parse::<usize>().map_err(|_| {
                fmt(
                    line,
                    format!("{} '{}' is not a count", ROUND_COLUMNS[i], cell(i)),
                )
            })
        };
        let float = |i: usize| match cell(i) {
            "" | "NA" => Ok(f64::NAN),
            t => t
                .parse::<f64>()
                .map_err(|_| fmt(line, format!("{} '{t}' is not a number", ROUND_COLUMNS[i]))),
        };
        let row = RoundRow {
            round: int(0)?,
            batch_size: int(1)?,
            n_measured_total: int(2)?,
            best_measured: float(3)?,
            best_predicted: float(4)?,
        };
        if row.round != out.len() {
            return Err(fmt(
                line,
                format!(
                    "round {} where round {} was expected (rounds count up from 0)",
                    row.round,
                    out.len()
                ),
            ));
        }
        out.push(row);
    }
    Ok(out)
}

/// Writes `rounds.csv` atomically (`NA` for a missing best).
///
/// ```
/// use em_protein::round_log::{RoundRow, read_rounds, write_rounds};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("rounds.csv");
/// let rows = [RoundRow { round: 0, batch_size: 3, n_measured_total: 10, best_measured: 1.5, best_predicted: 2.25 }];
/// write_rounds(&p, &rows).unwrap();
/// assert_eq!(std::fs::read_to_string(&p).unwrap(),
///     "round,batch_size,n_measured_total,best_measured,best_predicted\n0,3,10,1.5,2.25\n");
/// assert_eq!(read_rounds(&p).unwrap(), rows);
/// ```
pub fn write_rounds(path: &Path, rows: &[RoundRow]) -> Result<()> {
    let num = |x: f64| {
        if x.is_finite() {
            x.to_string()
        } else {
            "NA".into()
        }
    };
    io::write_atomic(path, |w| {
        writeln!(w, "{}", ROUND_COLUMNS.join(","))?;
        for r in rows {
            writeln!(
                w,
                "{},{},{},{},{}",
                r.round,
                r.batch_size,
                r.n_measured_total,
                num(r.best_measured),
                num(r.best_predicted)
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> Sequence {
        s.parse().unwrap()
    }

    #[test]
    fn a_row_sums_up_the_history_and_the_batch() {
        let t = ScoredSequences::new(vec![seq("AR"), seq("AN")], vec![1.0, 2.0]).unwrap();
        let h = History::from_data(&t).with_round(1, &[(seq("GR"), 3.0), (seq("AR"), 5.0)]);
        let row = RoundRow::new(1, &h, &[(seq("AA"), 7.0), (seq("NN"), 6.0)]);
        assert_eq!(
            (
                row.batch_size,
                row.n_measured_total,
                row.best_measured,
                row.best_predicted
            ),
            (2, 3, 3.0, 7.0)
        );
        assert!(RoundRow::new(2, &h, &[]).best_predicted.is_nan());
    }

    #[test]
    fn rounds_csv_must_count_up_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rounds.csv");
        let head = ROUND_COLUMNS.join(",");
        std::fs::write(&p, format!("{head}\n0,3,10,1.5,NA\n2,3,13,1.7,2\n")).unwrap();
        let e = read_rounds(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "rounds.csv:3: round 2 where round 1 was expected (rounds count up from 0)"
            ),
            "{e}"
        );
        std::fs::write(&p, format!("{head}\n0,x,10,1.5,NA\n")).unwrap();
        let e = read_rounds(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("rounds.csv:2: batch_size 'x' is not a count"),
            "{e}"
        );
        std::fs::write(&p, format!("{head}\n0,3,10,1.5,NA\n")).unwrap();
        assert!(read_rounds(&p).unwrap()[0].best_predicted.is_nan());
    }
}
