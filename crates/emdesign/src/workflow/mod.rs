//! Workflow files: read the TOML ([`raw`]), check it into a [`plan::Plan`] ([`plan`]), and
//! report every problem as `file:line:column: field `a.b`: what is wrong`.

pub mod image;
pub mod image_raw;
pub mod plan;
pub mod protein;
pub mod protein_build;
pub mod raw;
pub mod raw_protein;
pub mod toy2d;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

pub use plan::Plan;

/// A workflow file's text with its path, so errors can point into it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as given on the command line.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

impl Source {
    /// Read a workflow file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read workflow file {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The dotted key (`energy.train.lr`) written on the line holding `offset`: the last
    /// `[table]` header above it plus the key before `=` on that line, if any.
    pub fn field_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let mut table = String::new();
        let mut key = None;
        let mut start = 0;
        for line in self.text.split_inclusive('\n') {
            let end = start + line.len();
            let t = line.trim();
            if t.starts_with('[') && start <= offset {
                table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            }
            if (start..end.max(start + 1)).contains(&offset) {
                key = t
                    .split_once('=')
                    .map(|(k, _)| k.trim().trim_matches('"').to_string());
                break;
            }
            start = end;
        }
        match (table.is_empty(), key) {
            (_, Some(k)) if table.is_empty() => k,
            (false, Some(k)) => format!("{table}.{k}"),
            _ => table,
        }
    }

    /// An error located at `span`, naming `field`: `file:line:col: field `f`: msg`.
    pub fn error_at(
        &self,
        span: Range<usize>,
        field: &str,
        msg: impl std::fmt::Display,
    ) -> anyhow::Error {
        let (line, col) = self.line_col(span.start);
        anyhow!(
            "{}:{line}:{col}: field `{field}`: {msg}",
            self.path.display()
        )
    }

    /// Turn a toml deserialisation error into a located one naming the field.
    pub fn toml_error(&self, err: &toml::de::Error) -> anyhow::Error {
        match err.span() {
            Some(span) => {
                let field = self.field_at(span.start);
                if field.is_empty() {
                    let (line, col) = self.line_col(span.start);
                    anyhow!("{}:{line}:{col}: {}", self.path.display(), err.message())
                } else {
                    self.error_at(span, &field, err.message())
                }
            }
            None => anyhow!("{}: {}", self.path.display(), err.message()),
        }
    }
}

/// Read, parse and check a workflow file into a plan; `run_dir` overrides the file's.
pub fn load(path: &Path, run_dir: Option<&Path>) -> Result<Plan> {
    let src = Source::read(path)?;
    plan::build(&src, run_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "w.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn line_col_is_one_based() {
        let s = src("a = 1\nbb = 2\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        assert_eq!(s.line_col(11), (2, 6));
    }

    #[test]
    fn field_at_joins_table_and_key() {
        let text = "[workflow]\nkind = \"x\"\n[energy.train]\nlr = 5\n";
        let s = src(text);
        assert_eq!(s.field_at(text.find("5").unwrap()), "energy.train.lr");
        assert_eq!(s.field_at(text.find("\"x\"").unwrap()), "workflow.kind");
        assert_eq!(s.field_at(text.find("[energy").unwrap()), "energy.train");
    }

    #[test]
    fn toml_error_names_file_line_and_field() {
        let text = "[workflow]\nkind = \"toy2d\"\n[data]\nn_train = \"many\"\n";
        let s = src(text);
        let err = toml::from_str::<raw::RawToy2d>(text).unwrap_err();
        let msg = s.toml_error(&err).to_string();
        assert!(
            msg.starts_with("w.toml:4:11: field `data.n_train`:"),
            "{msg}"
        );
    }
}
