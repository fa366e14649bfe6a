//! The checked workflow: [`build`] turns the raw TOML into a [`Plan`] with defaults filled,
//! values range-checked (errors name the field and its line), paths resolved relative to the
//! workflow file. After this step nothing re-validates. `Plan::resolved_toml` writes it back.

use std::path::{Path, PathBuf};

use anyhow::Result;
use em_core::loss::NegativeInit;
use em_core::train::TrainConfig;
use serde::Serialize;
use toml::Spanned;

use super::Source;
use super::raw::RawHeadOnly;
pub use super::toy2d::{Energy, Report, Sample, TOY_TARGETS, Toy2d, ToyData};

/// A checked workflow, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `[workflow]` table, resolved.
    pub workflow: Header,
    /// The kind-specific stages' settings.
    pub body: Body,
}

/// `[workflow]`, resolved: absolute run directory, seed and name filled.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// Workflow kind (`toy2d`).
    pub kind: String,
    /// Name for reports (default: the file stem).
    pub name: String,
    /// Master seed.
    pub seed: u64,
    /// Absolute run directory.
    pub run_dir: PathBuf,
}

/// The stages' settings for each workflow kind.
#[derive(Debug, Clone)]
pub enum Body {
    /// Energy Matching on a 2D target.
    Toy2d(Toy2d),
    /// Energy Matching vs OT-CFM on images.
    Image(super::image::Image),
    /// Protein design on a GGS benchmark split.
    Protein(super::protein::Protein),
}

impl Plan {
    /// The stage names in run order.
    pub fn stage_names(&self) -> &'static [&'static str] {
        match self.body {
            Body::Toy2d(_) => &["data", "energy", "sample", "report"],
            Body::Protein(_) => &[
                "data",
                "predictor",
                "energy",
                "design",
                "evaluate",
                "report",
            ],
            Body::Image(_) => &super::image::IMAGE_STAGES,
        }
    }

    /// The resolved configuration as TOML in the input schema (absolute paths, all
    /// defaults written out): itself a valid workflow file.
    pub fn resolved_toml(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Resolved<'a, T: Serialize> {
            workflow: &'a Header,
            #[serde(flatten)]
            body: &'a T,
        }
        let text = match &self.body {
            Body::Toy2d(t) => toml::to_string(&Resolved {
                workflow: &self.workflow,
                body: t,
            })?,
            Body::Image(i) => toml::to_string(&Resolved {
                workflow: &self.workflow,
                body: i,
            })?,
            Body::Protein(p) => toml::to_string(&Resolved {
                workflow: &self.workflow,
                body: p,
            })?,
        };
        Ok(text)
    }
}

/// Range checks that name the field and the line of the offending value.
pub(super) struct Check<'a> {
    pub(super) src: &'a Source,
}

impl Check<'_> {
    pub(super) fn int(
        &self,
        field: &str,
        v: &Option<Spanned<i64>>,
        default: usize,
        lo: usize,
        hi: usize,
    ) -> Result<usize> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if x < lo as i64 || x > hi as i64 {
            return Err(self.src.error_at(
                v.span(),
                field,
                format!("must be in {lo}..={hi}, got {x}"),
            ));
        }
        Ok(x as usize)
    }

    pub(super) fn float(
        &self,
        field: &str,
        v: &Option<Spanned<f64>>,
        default: f64,
        lo: f64,
        hi: f64,
        open_lo: bool,
    ) -> Result<f64> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        let above = if open_lo { x > lo } else { x >= lo };
        if !x.is_finite() || !above || x > hi {
            let lb = if open_lo { "(" } else { "[" };
            return Err(self.src.error_at(
                v.span(),
                field,
                format!("must be in {lb}{lo}, {hi}], got {x}"),
            ));
        }
        Ok(x)
    }
}

impl Check<'_> {
    /// `negatives = "data" | "data_noise"` (default `default`).
    pub(super) fn negatives(
        &self,
        field: &str,
        v: &Option<Spanned<String>>,
        default: NegativeInit,
    ) -> Result<NegativeInit> {
        let Some(v) = v else { return Ok(default) };
        match v.get_ref().as_str() {
            "data" => Ok(NegativeInit::Data),
            "data_noise" => Ok(NegativeInit::DataNoise),
            other => Err(self.src.error_at(
                v.span(),
                field,
                format!("unknown value `{other}`, expected one of data, data_noise"),
            )),
        }
    }

    /// The engine's negative-horizon check ([`TrainConfig::negatives_problem`]) on checked
    /// settings, located at the first of `spans` the file sets (`table.name`), naming
    /// `table.allow_short_negatives` as the way out.
    pub(super) fn negative_horizon<const N: usize>(
        &self,
        cfg: &TrainConfig,
        table: &str,
        spans: [(&str, Option<std::ops::Range<usize>>); N],
    ) -> Result<()> {
        if !cfg.has_cd_phase() || cfg.allow_short_negatives {
            return Ok(());
        }
        let Some(problem) = cfg.negatives_problem() else {
            return Ok(());
        };
        let msg = format!(
            "{problem}; raise {table}.langevin_steps (or set {table}.allow_short_negatives = true)"
        );
        match spans.into_iter().find_map(|(name, s)| s.map(|s| (name, s))) {
            Some((name, span)) => Err(self.src.error_at(span, &format!("{table}.{name}"), msg)),
            None => Err(anyhow::anyhow!(
                "{}: field `{table}.langevin_steps`: {msg}",
                self.src.path.display()
            )),
        }
    }
}

/// Remove `.` and `name/..` pairs without touching the file system (for readable paths).
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Parse and check a workflow source; `run_dir` (from `--run-dir`) overrides the file's.
pub fn build(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let head: RawHeadOnly = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let kind = head.workflow.kind.get_ref().as_str();
    match kind {
        "toy2d" => super::toy2d::build(src, run_dir),
        "image" => super::image::build(src, run_dir),
        "protein" => super::protein::build(src, run_dir),
        other => Err(src.error_at(
            head.workflow.kind.span(),
            "workflow.kind",
            format!("unknown workflow kind `{other}`, expected one of `toy2d`, `protein`, `image`"),
        )),
    }
}

pub(super) fn base_dir(src: &Source) -> PathBuf {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

pub(super) fn header(
    src: &Source,
    raw: &super::raw::RawHeader,
    run_dir: Option<&Path>,
) -> Result<Header> {
    let base = base_dir(src);
    let stem = src
        .path
        .file_stem()
        .map_or("workflow".into(), |s| s.to_string_lossy().into_owned());
    let run_dir = match run_dir {
        Some(d) => std::path::absolute(d)?,
        None => base.join(
            raw.run_dir
                .clone()
                .unwrap_or_else(|| format!("runs/{stem}")),
        ),
    };
    let run_dir = normalise(&run_dir);
    Ok(Header {
        kind: raw.kind.get_ref().clone(),
        name: raw.name.clone().unwrap_or(stem),
        seed: raw.seed.unwrap_or(0),
        run_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "dir/w.toml".into(),
            text: text.into(),
        }
    }

    const MIN: &str = "[workflow]\nkind = \"toy2d\"\n[data]\ntarget = \"two-moons\"\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let plan = build(&src(MIN), None).unwrap();
        let Body::Toy2d(t) = &plan.body else {
            panic!("not a toy2d plan")
        };
        assert_eq!(t.energy.train.steps, 2000);
        assert_eq!(plan.workflow.name, "w");
        assert!(plan.workflow.run_dir.ends_with("dir/runs/w"));
        let text = MIN.replace("kind", "run_dir = \"../out/./r\"\nkind");
        let plan = build(&src(&text), None).unwrap();
        assert!(
            plan.workflow.run_dir.ends_with("out/r")
                && !plan.workflow.run_dir.to_string_lossy().contains("..")
        );
        assert_eq!(plan.stage_names(), ["data", "energy", "sample", "report"]);
    }

    #[test]
    fn out_of_range_names_field_and_line() {
        let text = format!("{MIN}[energy.train]\nlr = 5.0\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(
            err.starts_with("dir/w.toml:6:6: field `energy.train.lr`: must be in (0, 1], got 5"),
            "{err}"
        );
    }

    #[test]
    fn warmup_longer_than_training_is_refused() {
        let text = format!("{MIN}[energy.train]\nsteps = 10\nwarmup_steps = 11\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(
            err.contains("dir/w.toml:7:16: field `energy.train.warmup_steps`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_and_target_are_located() {
        let err = build(&src("[workflow]\nkind = \"nope\"\n"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("w.toml:2:8: field `workflow.kind`"), "{err}");
        let err = build(&src(&MIN.replace("two-moons", "moons")), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("w.toml:4:10: field `data.target`: unknown target `moons`"),
            "{err}"
        );
    }

    #[test]
    fn resolved_toml_is_a_valid_workflow() {
        let plan = build(&src(MIN), None).unwrap();
        let text = plan.resolved_toml().unwrap();
        let again = build(&src(&text), None).unwrap();
        assert_eq!(again.resolved_toml().unwrap(), text);
    }
}
