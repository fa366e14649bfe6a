//! The sequence energy `V_theta` for protein design: em-core's residual Conv1d potential on
//! the `[-1, 1]` one-hot embedding ([`crate::representation`]), trained with Energy
//! Matching on a split's training sequences, and saved/loaded as one file for caching.

use std::fs;
use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use em_core::data::DataMatrix;
use em_core::nn::{Activation, SeqConvPotential, SeqConvPotentialConfig, SeqReadout};
use em_core::train::{TrainConfig, Trainer};
use serde::{Deserialize, Serialize};

use crate::alphabet::ALPHABET_SIZE;
use crate::design::DesignError;
use crate::representation::embed;
use crate::sequence::Sequence;

/// File magic of a saved potential (`EMPOT001`, then `u64` LE length + JSON header, then the
/// burnpack record of the weights).
const MAGIC: &[u8; 8] = b"EMPOT001";

/// Smooth activations of the energy network, as written in TOML (`"silu"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationName {
    /// `x * sigmoid(x)`.
    Silu,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `tanh(x)`.
    Tanh,
    /// GELU (tanh approximation).
    GeluTanh,
}

impl From<ActivationName> for Activation {
    fn from(a: ActivationName) -> Self {
        match a {
            ActivationName::Silu => Activation::Silu,
            ActivationName::Softplus => Activation::Softplus,
            ActivationName::Tanh => Activation::Tanh,
            ActivationName::GeluTanh => Activation::GeluTanh,
        }
    }
}

/// How the energy network's convolutional features reach its head, as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadoutName {
    /// Mean over positions: translation invariant (motifs that may sit anywhere).
    Mean,
    /// Flatten: position aware (aligned variants of one protein).
    Flatten,
    /// Per position: a head shared across positions on the features plus a learned position
    /// embedding, `V = output_scale * sum over positions` (the official potential's scaled
    /// per-position sum, m1balcerak/EnergyMatching `experiments/proteins/model_proteins.py`).
    PositionSum,
}

impl ReadoutName {
    /// Every readout, in the order error messages list them.
    pub const ALL: [ReadoutName; 3] = [
        ReadoutName::Flatten,
        ReadoutName::Mean,
        ReadoutName::PositionSum,
    ];

    /// The TOML spelling (`"flatten"`, `"mean"`, `"position_sum"`).
    pub fn name(self) -> &'static str {
        match self {
            ReadoutName::Mean => "mean",
            ReadoutName::Flatten => "flatten",
            ReadoutName::PositionSum => "position_sum",
        }
    }

    /// The readout spelled `name` in TOML, if any.
    pub fn from_name(name: &str) -> Option<ReadoutName> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl From<ReadoutName> for SeqReadout {
    fn from(r: ReadoutName) -> Self {
        match r {
            ReadoutName::Mean => SeqReadout::Mean,
            ReadoutName::Flatten => SeqReadout::Flatten,
            ReadoutName::PositionSum => SeqReadout::PositionSum,
        }
    }
}

/// `output_scale` of the official protein potential (m1balcerak/EnergyMatching
/// `experiments/proteins/config.py`, passed to `Unet1DModelWrapper` by `train_proteins.py`).
pub const OFFICIAL_PROTEIN_OUTPUT_SCALE: f64 = 1000.0;

/// Shape of the energy network ([`SeqConvPotential`]); length and channels come from the
/// data (`L`, 20).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnergyNetConfig {
    /// Hidden channels of the convolutions (default 64).
    pub hidden_channels: usize,
    /// Odd kernel width (default 5).
    pub kernel: usize,
    /// Residual Conv1d blocks (default 3).
    pub blocks: usize,
    /// Hidden width of the MLP head (default 64).
    pub head_hidden: usize,
    /// Activation (default `"silu"`).
    pub activation: ActivationName,
    /// Feature readout to the head (default `"position_sum"`: position aware, the official
    /// potential's form; on AAV hard, seed 0, 600 steps it designed on par with `"flatten"`
    /// with a third of the parameters, see the issue-14 report).
    pub readout: ReadoutName,
    /// Output scale of the `"position_sum"` readout (default 1000: `output_scale` of the
    /// official protein config, m1balcerak/EnergyMatching `experiments/proteins/config.py`).
    pub output_scale: f64,
    /// Strength `alpha` of an added `alpha/2 ||x||^2` (default 0: the sampler's clamp box
    /// already confines the states).
    pub confinement: f64,
}

impl Default for EnergyNetConfig {
    fn default() -> Self {
        Self {
            hidden_channels: 64,
            kernel: 5,
            blocks: 3,
            head_hidden: 64,
            activation: ActivationName::Silu,
            readout: ReadoutName::PositionSum,
            output_scale: OFFICIAL_PROTEIN_OUTPUT_SCALE,
            confinement: 0.0,
        }
    }
}

impl EnergyNetConfig {
    /// The engine config for sequences of `length` residues, checked (errors name
    /// `model.<field>`).
    pub fn seq_conv(&self, length: usize) -> Result<SeqConvPotentialConfig, DesignError> {
        self.seq_conv_channels(length, ALPHABET_SIZE)
    }

    /// The engine config for `length` positions of `channels` values each (20 for the
    /// one-hot embedding, 1 for a VAE latent read as a signal; see [`crate::latent`]).
    pub fn seq_conv_channels(
        &self,
        length: usize,
        channels: usize,
    ) -> Result<SeqConvPotentialConfig, DesignError> {
        let cfg = SeqConvPotentialConfig::new(length, channels)
            .with_hidden_channels(self.hidden_channels)
            .with_kernel(self.kernel)
            .with_blocks(self.blocks)
            .with_head_hidden(self.head_hidden)
            .with_activation(self.activation.into())
            .with_readout(self.readout.into())
            .with_output_scale(self.output_scale)
            .with_confinement(self.confinement);
        cfg.check().map_err(|e| DesignError::prefixed("model", e))?;
        Ok(cfg)
    }
}

/// Energy model settings: the network and em-core's Energy Matching [`TrainConfig`]
/// (protein defaults from the paper: `eps_max = 0.1`, `lambda_cd = 1e-4`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProteinEnergyConfig {
    /// The network.
    pub model: EnergyNetConfig,
    /// Training (flow warm-up steps, then flow + contrastive steps; EMA; checkpoints).
    pub train: TrainConfig,
}

/// Trains `V_theta` on `train_seqs` (equal length, embedded as `2·onehot - 1`) and returns
/// the EMA weights on the plain `device`.
///
/// Parameters are initialised after seeding `device` with `train.seed`. With
/// `checkpoint_dir`, training resumes from its newest checkpoint (written under the same
/// config) and checkpoints every `train.checkpoint_every` steps; `log` appends one JSON line
/// per step. Errors: empty or ragged sequences, invalid settings (named `model.*` /
/// `train.*`), non-finite losses, checkpoint I/O.
pub fn train_energy(
    train_seqs: &[Sequence],
    cfg: &ProteinEnergyConfig,
    checkpoint_dir: Option<&Path>,
    log: Option<&Path>,
    device: &Device,
) -> Result<SeqConvPotential, DesignError> {
    let length = common_length(train_seqs)?;
    let net = cfg.model.seq_conv(length)?;
    let settings = cfg
        .train
        .clone()
        .check()
        .map_err(|e| DesignError::prefixed("train", e))?;
    let data = DataMatrix::new(embed(train_seqs, length), length * ALPHABET_SIZE)?;
    let ad = device.clone().autodiff();
    ad.seed(cfg.train.seed);
    let mut trainer = Trainer::new(net.init(&ad), settings);
    if let Some(dir) = checkpoint_dir {
        trainer = trainer.with_checkpoint_dir(dir);
    }
    if let Some(path) = log {
        trainer = trainer.with_log(path)?;
    }
    let mut trainer = trainer.resume()?;
    trainer.fit(&data)?;
    Ok(trainer.ema().clone())
}

/// The length shared by all of `seqs` (errors when empty or ragged, naming the sequence).
pub(crate) fn common_length(seqs: &[Sequence]) -> Result<usize, DesignError> {
    let first = seqs.first().ok_or_else(|| DesignError::Data {
        what: "no training sequences".into(),
    })?;
    if let Some((i, s)) = seqs
        .iter()
        .enumerate()
        .find(|(_, s)| s.len() != first.len())
    {
        return Err(DesignError::Data {
            what: format!(
                "training sequence {i} has length {}, the first has {}",
                s.len(),
                first.len()
            ),
        });
    }
    Ok(first.len())
}

/// Header of a saved potential: everything needed to rebuild the module before loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedHeader {
    length: usize,
    /// Channels per position: 20 (one-hot, left out of the file) or 1 (a VAE latent).
    #[serde(default = "one_hot_channels", skip_serializing_if = "is_one_hot")]
    channels: usize,
    model: EnergyNetConfig,
}

fn one_hot_channels() -> usize {
    ALPHABET_SIZE
}

fn is_one_hot(channels: &usize) -> bool {
    *channels == ALPHABET_SIZE
}

/// Writes a trained potential and its network config to `path` atomically (scratch file in
/// the same directory, synced, renamed over `path`).
pub fn save_potential(
    path: &Path,
    potential: &SeqConvPotential,
    model: &EnergyNetConfig,
) -> Result<(), DesignError> {
    let bad = |why: String| DesignError::potential_file(path, why, None);
    let header = serde_json::to_vec(&SavedHeader {
        length: potential.length,
        channels: potential.channels,
        model: model.clone(),
    })
    .map_err(|e| bad(format!("cannot encode header: {e}")))?;
    let record = potential
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| bad(format!("cannot encode weights: {e}")))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| DesignError::potential_file(path, "cannot write".into(), Some(e));
    fs::create_dir_all(dir).map_err(io)?;
    let mut tmp =
        crate::io::temp_file_for(dir, &path.file_name().unwrap_or_default().to_string_lossy())
            .map_err(io)?;
    tmp.write_all(MAGIC).map_err(io)?;
    tmp.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    tmp.write_all(&header).map_err(io)?;
    tmp.write_all(&record).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Loads a potential written by [`save_potential`] onto `device`, with its network config.
/// Errors name the file: unreadable, not a potential, or weights that do not fit the header.
pub fn load_potential(
    path: &Path,
    device: &Device,
) -> Result<(SeqConvPotential, EnergyNetConfig), DesignError> {
    let bad = |why: String| DesignError::potential_file(path, why, None);
    let buf = fs::read(path)
        .map_err(|e| DesignError::potential_file(path, "cannot read".into(), Some(e)))?;
    if buf.len() < 16 || &buf[..8] != MAGIC {
        return Err(bad("not an emdesign potential file (bad magic)".into()));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&buf[8..16]);
    let end = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|n| n.checked_add(16))
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| bad("truncated header".into()))?;
    let header: SavedHeader =
        serde_json::from_slice(&buf[16..end]).map_err(|e| bad(format!("bad header: {e}")))?;
    let skeleton = header
        .model
        .seq_conv_channels(header.length, header.channels)?
        .init(device);
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(buf[end..].to_vec()))
        .map_err(|e| bad(format!("corrupt weights: {e}")))?;
    let potential = skeleton
        .try_load_record(record)
        .map_err(|e| bad(format!("weights do not match the header's network: {e}")))?;
    Ok((potential, header.model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_core::potential::Potential;

    fn tiny() -> ProteinEnergyConfig {
        ProteinEnergyConfig {
            model: EnergyNetConfig {
                hidden_channels: 4,
                kernel: 3,
                blocks: 1,
                head_hidden: 4,
                ..Default::default()
            },
            train: TrainConfig {
                total_steps: 3,
                flow_steps: 2,
                batch_size: 4,
                neg_steps: 2,
                allow_short_negatives: true, // a plumbing test, not a model
                lr_warmup_steps: 1,
                checkpoint_every: 0,
                ema_decay: 0.5,
                ..Default::default()
            },
        }
    }

    fn seqs() -> Vec<Sequence> {
        ["ACDEFGHI", "KLMNPQRS", "TVWYACDE", "GGGGAAAA", "MKVLAAGG"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    #[test]
    fn trains_resumes_saves_and_loads() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        let v = train_energy(&seqs(), &tiny(), Some(&ckpt), None, &device).unwrap();
        assert_eq!(v.dim(), 8 * 20);
        // A rerun finds the finished checkpoint and returns the same weights.
        let again = train_energy(&seqs(), &tiny(), Some(&ckpt), None, &device).unwrap();
        let x = crate::representation::embed_tensor(&seqs(), 8, &device);
        let e1 = v
            .energy(x.clone())
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let e2 = again
            .energy(x.clone())
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(e1, e2);

        let path = dir.path().join("v.empot");
        save_potential(&path, &v, &tiny().model).unwrap();
        let (back, model) = load_potential(&path, &device).unwrap();
        assert_eq!(model, tiny().model);
        let e3 = back
            .energy(x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(e1, e3);

        let mut garbage = b"EMPOT001".to_vec();
        garbage.extend_from_slice(&1000u64.to_le_bytes());
        garbage.extend_from_slice(b"{}");
        fs::write(&path, garbage).unwrap();
        let e = load_potential(&path, &device).unwrap_err().to_string();
        assert!(e.contains("v.empot") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn errors_name_fields_and_sequences() {
        let device = Device::flex();
        let mut cfg = tiny();
        cfg.model.kernel = 4;
        let e = train_energy(&seqs(), &cfg, None, None, &device).unwrap_err();
        assert!(e.to_string().contains("model.kernel"), "{e}");
        let mut cfg = tiny();
        cfg.train.lr = -1.0;
        let e = train_energy(&seqs(), &cfg, None, None, &device).unwrap_err();
        assert!(e.to_string().contains("train.lr"), "{e}");
        let mut ragged = seqs();
        ragged.push("AC".parse().unwrap());
        let e = train_energy(&ragged, &tiny(), None, None, &device).unwrap_err();
        assert!(e.to_string().contains("sequence 5"), "{e}");
        let toml_like = r#"{"model": {"hidden_channels": 8, "activation": "gelu_tanh"}}"#;
        let c: ProteinEnergyConfig = serde_json::from_str(toml_like).unwrap();
        assert_eq!(c.model.activation, ActivationName::GeluTanh);
        assert_eq!(c.model.kernel, 5);
        assert!(serde_json::from_str::<ProteinEnergyConfig>(r#"{"modle": {}}"#).is_err());
    }
}
