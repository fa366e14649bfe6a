//! Published benchmark figures (`datasets/published.csv`, with citations), compiled in and
//! parsed for the protein report; never hard-coded in prose.

use anyhow::{Result, bail};
use serde::Serialize;

/// The file's text (`task,difficulty,method,fitness,diversity,novelty,source`, `#` comments).
pub const TEXT: &str = include_str!("../../../../datasets/published.csv");

/// One published result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Published {
    /// Method name.
    pub method: String,
    /// Fitness.
    pub fitness: f64,
    /// Diversity.
    pub diversity: f64,
    /// Novelty.
    pub novelty: f64,
    /// Citation.
    pub source: String,
}

/// Parse `text` and keep the rows of `task` / `difficulty`; a bad line names its number.
pub fn parse(text: &str, task: &str, difficulty: &str) -> Result<Vec<Published>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("task,") {
            continue;
        }
        let f: Vec<&str> = line.splitn(7, ',').map(str::trim).collect();
        if f.len() != 7 {
            bail!(
                "published.csv:{}: expected 7 columns, got {}",
                i + 1,
                f.len()
            );
        }
        let num = |k: usize| {
            f[k].parse::<f64>()
                .map_err(|_| anyhow::anyhow!("published.csv:{}: `{}` is not a number", i + 1, f[k]))
        };
        if f[0] == task && f[1] == difficulty {
            out.push(Published {
                method: f[2].into(),
                fitness: num(3)?,
                diversity: num(4)?,
                novelty: num(5)?,
                source: f[6].into(),
            });
        }
    }
    Ok(out)
}

/// The compiled-in rows of `task` / `difficulty`.
pub fn rows(task: &str, difficulty: &str) -> Result<Vec<Published>> {
    parse(TEXT, task, difficulty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_parses_and_filters() {
        let aav = rows("aav", "hard").unwrap();
        assert!(aav.iter().any(|r| r.method == "GGS"), "{aav:?}");
        assert!(aav.len() >= 2);
        assert!(!rows("gfp", "medium").unwrap().is_empty());
        let e = parse("# c\nx,y,m,1,2\n", "x", "y").unwrap_err().to_string();
        assert!(e.contains("published.csv:2"), "{e}");
    }
}
