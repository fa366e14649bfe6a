//! 2D point files (`x,y` CSV with a header) read and written by the toy stages; a bad line is
//! an error naming the file and line.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use em_core::data::DataMatrix;

/// Read an `x,y` CSV (an optional non-numeric header line; `#` comments and blank lines skipped).
pub fn read(path: &Path) -> Result<DataMatrix> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.is_empty()
            && fields.iter().any(|f| f.parse::<f32>().is_err())
            && fields.len() == 2
            && i == 0
        {
            continue; // header
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        if fields.len() != 2 {
            bail!("{}: expected 2 columns `x,y`, found {}", at(), fields.len());
        }
        for (col, f) in fields.iter().enumerate() {
            let v: f32 = f
                .parse()
                .map_err(|_| anyhow!("{}: column {}: `{f}` is not a number", at(), col + 1))?;
            if !v.is_finite() {
                bail!("{}: column {}: value `{f}` is not finite", at(), col + 1);
            }
            values.push(v);
        }
    }
    if values.is_empty() {
        bail!("{}: no points", path.display());
    }
    DataMatrix::new(values, 2).with_context(|| format!("{}", path.display()))
}

/// Write flat `[n, 2]` values as an `x,y` CSV with full f32 precision.
pub fn write(path: &Path, values: &[f32]) -> Result<()> {
    let mut out = String::from("x,y\n");
    for p in values.chunks(2) {
        let _ = writeln!(out, "{},{}", p[0], p[1]);
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        let v = vec![0.1f32, -2.5, 1e-7, 3.333_333_3];
        write(&p, &v).unwrap();
        assert_eq!(read(&p).unwrap().values(), v.as_slice());
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        std::fs::write(&p, "x,y\n1,2\n3,NaN\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("p.csv:3: column 2: value `NaN` is not finite"),
            "{e}"
        );
        std::fs::write(&p, "1,2\n3\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("p.csv:2: expected 2 columns `x,y`, found 1"),
            "{e}"
        );
        std::fs::write(&p, "x,y\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().ends_with("no points"));
    }
}
