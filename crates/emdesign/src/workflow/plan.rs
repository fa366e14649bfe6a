//! The checked workflow: [`build`] turns the raw TOML into a [`Plan`] with defaults filled,
//! values range-checked (errors name the field and its line), paths resolved relative to the
//! workflow file. After this step nothing re-validates. `Plan::resolved_toml` writes it back.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;
use toml::Spanned;

use super::Source;
use super::raw::{RawHeadOnly, RawToy2d};

/// The 2D targets `em_core::toy` provides.
pub const TOY_TARGETS: [&str; 3] = ["two-moons", "8gaussians", "checkerboard"];

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
}

/// A toy2d workflow: data -> energy -> sample -> report.
#[derive(Debug, Clone, Serialize)]
pub struct Toy2d {
    /// `[data]`.
    pub data: ToyData,
    /// `[energy]`.
    pub energy: Energy,
    /// `[sample]`.
    pub sample: Sample,
    /// `[report]`.
    pub report: Report,
}

/// Where the 2D training points come from.
#[derive(Debug, Clone, Serialize)]
pub struct ToyData {
    /// A named `em_core::toy` target (absent when `points` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// An `x,y` CSV file, absolute path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<PathBuf>,
    /// Training points.
    pub n_train: usize,
    /// Held-out points for the MMD check.
    pub n_eval: usize,
}

/// The potential network and its training.
#[derive(Debug, Clone, Serialize)]
pub struct Energy {
    /// Hidden width of the MLP.
    pub hidden: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Trainer settings.
    pub train: Train,
}

/// Energy Matching trainer settings.
#[derive(Debug, Clone, Serialize)]
pub struct Train {
    /// Total steps.
    pub steps: usize,
    /// Flow warm-up steps (then contrastive).
    pub warmup_steps: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Contrastive weight.
    pub lambda_cd: f64,
    /// Maximum temperature of the negatives' chains.
    pub eps_max: f64,
    /// Start of the negatives' temperature ramp.
    pub tau_star: f64,
    /// Langevin steps per negative batch.
    pub langevin_steps: usize,
    /// Langevin step size for negatives.
    pub langevin_dt: f64,
    /// EMA decay.
    pub ema_decay: f64,
    /// Checkpoint period in steps.
    pub checkpoint_every: usize,
}

/// Langevin sampling from noise.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Number of samples.
    pub n: usize,
    /// Steps.
    pub steps: usize,
    /// Step size.
    pub dt: f64,
    /// Maximum temperature.
    pub eps_max: f64,
    /// Start of the temperature ramp eps(t).
    pub tau_star: f64,
}

/// Report settings.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Contour grid cells per axis.
    pub grid: usize,
    /// MMD RBF bandwidth.
    pub mmd_bandwidth: f64,
}

impl Plan {
    /// The stage names in run order.
    pub fn stage_names(&self) -> &'static [&'static str] {
        match self.body {
            Body::Toy2d(_) => &["data", "energy", "sample", "report"],
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
            Body::Toy2d(t) => toml::to_string(&Resolved { workflow: &self.workflow, body: t })?,
        };
        Ok(text)
    }
}

/// Range checks that name the field and the line of the offending value.
struct Check<'a> {
    src: &'a Source,
}

impl Check<'_> {
    fn int(&self, field: &str, v: &Option<Spanned<i64>>, default: usize, lo: usize, hi: usize) -> Result<usize> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if x < lo as i64 || x > hi as i64 {
            return Err(self.src.error_at(v.span(), field, format!("must be in {lo}..={hi}, got {x}")));
        }
        Ok(x as usize)
    }

    fn float(&self, field: &str, v: &Option<Spanned<f64>>, default: f64, lo: f64, hi: f64, open_lo: bool) -> Result<f64> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        let above = if open_lo { x > lo } else { x >= lo };
        if !x.is_finite() || !above || x > hi {
            let lb = if open_lo { "(" } else { "[" };
            return Err(self.src.error_at(v.span(), field, format!("must be in {lb}{lo}, {hi}], got {x}")));
        }
        Ok(x)
    }
}

/// Parse and check a workflow source; `run_dir` (from `--run-dir`) overrides the file's.
pub fn build(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let head: RawHeadOnly = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let kind = head.workflow.kind.get_ref().as_str();
    match kind {
        "toy2d" => build_toy2d(src, run_dir),
        "protein" | "image" => Err(src.error_at(
            head.workflow.kind.span(),
            "workflow.kind",
            format!("workflow kind `{kind}` is not available yet in this build (only `toy2d`)"),
        )),
        other => Err(src.error_at(
            head.workflow.kind.span(),
            "workflow.kind",
            format!("unknown workflow kind `{other}`, expected one of `toy2d`, `protein`, `image`"),
        )),
    }
}

fn base_dir(src: &Source) -> PathBuf {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn header(src: &Source, raw: &super::raw::RawHeader, run_dir: Option<&Path>) -> Result<Header> {
    let base = base_dir(src);
    let stem = src.path.file_stem().map_or("workflow".into(), |s| s.to_string_lossy().into_owned());
    let run_dir = match run_dir {
        Some(d) => std::path::absolute(d)?,
        None => base.join(raw.run_dir.clone().unwrap_or_else(|| format!("runs/{stem}"))),
    };
    Ok(Header {
        kind: raw.kind.get_ref().clone(),
        name: raw.name.clone().unwrap_or(stem),
        seed: raw.seed.unwrap_or(0),
        run_dir,
    })
}

fn build_toy2d(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let raw: RawToy2d = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let c = Check { src };
    let workflow = header(src, &raw.workflow, run_dir)?;
    let d = &raw.data;
    let (target, points) = match (&d.target, &d.points) {
        (Some(_), Some(p)) => {
            return Err(src.error_at(p.span(), "data.points", "give either `target` or `points`, not both"));
        }
        (None, None) => bail!("{}: table `[data]` needs `target` or `points`", src.path.display()),
        (Some(t), None) => {
            if !TOY_TARGETS.contains(&t.get_ref().as_str()) {
                return Err(src.error_at(
                    t.span(),
                    "data.target",
                    format!("unknown target `{}`, expected one of {}", t.get_ref(), TOY_TARGETS.join(", ")),
                ));
            }
            (Some(t.get_ref().clone()), None)
        }
        (None, Some(p)) => {
            let path = base_dir(src).join(p.get_ref());
            if !path.is_file() {
                return Err(src.error_at(p.span(), "data.points", format!("file not found: {}", path.display())));
            }
            (None, Some(path))
        }
    };
    let data = super::plan::ToyData {
        target,
        points,
        n_train: c.int("data.n_train", &d.n_train, 4096, 16, 10_000_000)?,
        n_eval: c.int("data.n_eval", &d.n_eval, 2000, 16, 1_000_000)?,
    };
    let t = &raw.energy.train;
    let steps = c.int("energy.train.steps", &t.steps, 2000, 1, 100_000_000)?;
    let train = Train {
        steps,
        warmup_steps: c.int("energy.train.warmup_steps", &t.warmup_steps, steps * 3 / 4, 0, steps)?,
        batch_size: c.int("energy.train.batch_size", &t.batch_size, 256, 2, 1_000_000)?,
        lr: c.float("energy.train.lr", &t.lr, 1e-3, 0.0, 1.0, true)?,
        lambda_cd: c.float("energy.train.lambda_cd", &t.lambda_cd, 0.1, 0.0, 1e6, false)?,
        eps_max: c.float("energy.train.eps_max", &t.eps_max, 0.01, 0.0, 100.0, false)?,
        tau_star: c.float("energy.train.tau_star", &t.tau_star, 0.5, 0.0, 0.999_999, false)?,
        langevin_steps: c.int("energy.train.langevin_steps", &t.langevin_steps, 50, 1, 100_000)?,
        langevin_dt: c.float("energy.train.langevin_dt", &t.langevin_dt, 0.01, 0.0, 10.0, true)?,
        ema_decay: c.float("energy.train.ema_decay", &t.ema_decay, 0.99, 0.0, 0.999_999, false)?,
        checkpoint_every: c.int("energy.train.checkpoint_every", &t.checkpoint_every, 100, 1, 100_000_000)?,
    };
    let e = &raw.energy;
    let energy = Energy {
        hidden: c.int("energy.hidden", &e.hidden, 64, 1, 65_536)?,
        depth: c.int("energy.depth", &e.depth, 3, 1, 64)?,
        train,
    };
    let s = &raw.sample;
    let sample = Sample {
        n: c.int("sample.n", &s.n, 2000, 1, 10_000_000)?,
        steps: c.int("sample.steps", &s.steps, 200, 1, 1_000_000)?,
        dt: c.float("sample.dt", &s.dt, 0.01, 0.0, 10.0, true)?,
        eps_max: c.float("sample.eps_max", &s.eps_max, 0.01, 0.0, 100.0, false)?,
        tau_star: c.float("sample.tau_star", &s.tau_star, 0.5, 0.0, 0.999_999, false)?,
    };
    let r = &raw.report;
    let report = Report {
        grid: c.int("report.grid", &r.grid, 60, 4, 1000)?,
        mmd_bandwidth: c.float("report.mmd_bandwidth", &r.mmd_bandwidth, 0.5, 0.0, 1e6, true)?,
    };
    Ok(Plan { workflow, body: Body::Toy2d(Toy2d { data, energy, sample, report }) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source { path: "dir/w.toml".into(), text: text.into() }
    }

    const MIN: &str = "[workflow]\nkind = \"toy2d\"\n[data]\ntarget = \"two-moons\"\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let plan = build(&src(MIN), None).unwrap();
        let Body::Toy2d(t) = &plan.body;
        assert_eq!(t.energy.train.steps, 2000);
        assert_eq!(plan.workflow.name, "w");
        assert!(plan.workflow.run_dir.ends_with("dir/runs/w"));
        assert_eq!(plan.stage_names(), ["data", "energy", "sample", "report"]);
    }

    #[test]
    fn out_of_range_names_field_and_line() {
        let text = format!("{MIN}[energy.train]\nlr = 5.0\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(err.starts_with("dir/w.toml:6:6: field `energy.train.lr`: must be in (0, 1], got 5"), "{err}");
    }

    #[test]
    fn warmup_longer_than_training_is_refused() {
        let text = format!("{MIN}[energy.train]\nsteps = 10\nwarmup_steps = 11\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(err.contains("dir/w.toml:7:16: field `energy.train.warmup_steps`"), "{err}");
    }

    #[test]
    fn unknown_kind_and_target_are_located() {
        let err = build(&src("[workflow]\nkind = \"nope\"\n"), None).unwrap_err().to_string();
        assert!(err.contains("w.toml:2:8: field `workflow.kind`"), "{err}");
        let err = build(&src(&MIN.replace("two-moons", "moons")), None).unwrap_err().to_string();
        assert!(err.contains("w.toml:4:10: field `data.target`: unknown target `moons`"), "{err}");
    }

    #[test]
    fn resolved_toml_is_a_valid_workflow() {
        let plan = build(&src(MIN), None).unwrap();
        let text = plan.resolved_toml().unwrap();
        let again = build(&src(&text), None).unwrap();
        assert_eq!(again.resolved_toml().unwrap(), text);
    }
}
