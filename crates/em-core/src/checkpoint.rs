//! Training checkpoints: model, EMA and optimizer state (burnpack records, which keep
//! parameter ids) plus step, RNG state and config as JSON, in one file written atomically.
//!
//! Layout: `EMCKPT02`, then four sections each as `u64 little-endian length + bytes`:
//! metadata JSON, model record, EMA record, optimizer record; then the SHA-256 of every byte
//! before it, so a truncated or bit-flipped file is caught on load (files written as
//! `EMCKPT01`, without the digest, still load). [`latest`] skips checkpoints that do not read
//! back whole, so a run resumes from the newest good one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"EMCKPT02";
/// The format before the trailing digest.
const MAGIC_V1: &[u8; 8] = b"EMCKPT01";
const DIGEST_LEN: usize = 32;
const EXT: &str = "emck";

/// Non-tensor state saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Optimizer steps completed.
    pub step: u64,
    /// Base seed; the RNG of step `s` is derived from `(seed, s)`, so this plus `step` is the
    /// whole RNG state.
    pub seed: u64,
    /// The training config (JSON), compared on resume.
    pub config: serde_json::Value,
}

/// File name of the checkpoint after `step` steps (`ckpt-000000123.emck`).
pub fn file_name(step: u64) -> String {
    format!("ckpt-{step:09}.{EXT}")
}

/// The checkpoint with the highest step in `dir` that reads back whole (magic, section
/// lengths, digest and metadata check), if any. Temp files are ignored, and so is a corrupt
/// or truncated checkpoint (a disk that filled up, a copy cut short): the run then resumes
/// from the previous good one. When checkpoints exist but none reads back, the newest's
/// error is returned (the caller says how to start over) rather than silently restarting.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    let mut all = checkpoints(dir)?;
    all.sort();
    let mut newest_error = None;
    for (_, p) in all.into_iter().rev() {
        match read_sections(&p) {
            Ok(_) => return Ok(Some(p)),
            Err(e) => {
                newest_error.get_or_insert(e);
            }
        }
    }
    newest_error.map_or(Ok(None), Err)
}

/// Every `ckpt-<step>.emck` in `dir` with its step, unordered.
fn checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, "cannot list checkpoint directory", e)),
    };
    let mut all = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, "cannot list checkpoint directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(step) = name
            .strip_prefix("ckpt-")
            .and_then(|s| s.strip_suffix(&format!(".{EXT}")))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        all.push((step, entry.path()));
    }
    Ok(all)
}

/// Writes model, EMA and optimizer state with `meta` to `path` atomically: a temp file in the
/// same directory is written, synced and renamed, so a kill leaves no partial checkpoint.
pub fn save<M: Module>(
    path: &Path,
    model: &M,
    ema: &M,
    optim: &ModuleOptimizer,
    meta: &CheckpointMeta,
) -> Result<()> {
    let rec_err = |what: &str, e: burn::store::RecordError| {
        Error::checkpoint(path, format!("cannot encode {what}: {e}"))
    };
    let meta_json = serde_json::to_vec(meta)
        .map_err(|e| Error::checkpoint(path, format!("cannot encode metadata: {e}")))?;
    let model_b = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| rec_err("model", e))?;
    let ema_b = ema
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| rec_err("EMA", e))?;
    let optim_b = optim
        .to_record()
        .into_bytes()
        .map_err(|e| rec_err("optimizer", e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create checkpoint directory", e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(fs::File::create(&tmp)?);
        let mut digest = Sha256::new();
        let mut put = |f: &mut std::io::BufWriter<fs::File>, bytes: &[u8]| {
            digest.update(bytes);
            f.write_all(bytes)
        };
        put(&mut f, MAGIC)?;
        for section in [&meta_json[..], &model_b[..], &ema_b[..], &optim_b[..]] {
            put(&mut f, &(section.len() as u64).to_le_bytes())?;
            put(&mut f, section)?;
        }
        f.write_all(&digest.finalize())?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path, "cannot write checkpoint", e)
    })
}

/// The raw sections of a checkpoint file.
struct Sections {
    meta: CheckpointMeta,
    model: Vec<u8>,
    ema: Vec<u8>,
    optim: Vec<u8>,
}

fn read_sections(path: &Path) -> Result<Sections> {
    let mut buf = fs::read(path).map_err(|e| io_err(path, "cannot read checkpoint", e))?;
    let magic = buf.get(..MAGIC.len());
    if magic == Some(&MAGIC[..]) {
        if buf.len() < MAGIC.len() + DIGEST_LEN {
            return Err(Error::checkpoint(path, "truncated (no digest)"));
        }
        let body = buf.len() - DIGEST_LEN;
        if Sha256::digest(&buf[..body])[..] != buf[body..] {
            return Err(Error::checkpoint(
                path,
                "corrupt: its SHA-256 digest does not match (truncated or altered file)",
            ));
        }
        buf.truncate(body);
    } else if magic != Some(&MAGIC_V1[..]) {
        return Err(Error::checkpoint(
            path,
            "not an em-core checkpoint (bad magic)",
        ));
    }
    let mut pos = MAGIC.len();
    let mut sections = Vec::with_capacity(4);
    for name in ["metadata", "model", "EMA", "optimizer"] {
        let truncated = || Error::checkpoint(path, format!("truncated in the {name} section"));
        let len_bytes: [u8; 8] = buf
            .get(pos..pos + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(truncated)?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| truncated())?;
        pos += 8;
        let end = pos.checked_add(len).ok_or_else(truncated)?;
        sections.push(buf.get(pos..end).ok_or_else(truncated)?.to_vec());
        pos = end;
    }
    if pos != buf.len() {
        return Err(Error::checkpoint(
            path,
            "trailing bytes after the last section",
        ));
    }
    let optim = sections.pop().unwrap_or_default();
    let ema = sections.pop().unwrap_or_default();
    let model = sections.pop().unwrap_or_default();
    let meta_bytes = sections.pop().unwrap_or_default();
    let meta = serde_json::from_slice(&meta_bytes)
        .map_err(|e| Error::checkpoint(path, format!("bad metadata JSON: {e}")))?;
    Ok(Sections {
        meta,
        model,
        ema,
        optim,
    })
}

/// Reads only the metadata of a checkpoint.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    Ok(read_sections(path)?.meta)
}

/// Loaded training state.
pub struct Loaded<M> {
    /// Model with the saved weights and parameter ids.
    pub model: M,
    /// EMA module.
    pub ema: M,
    /// Optimizer with its saved state.
    pub optim: ModuleOptimizer,
    /// Step, seed and config.
    pub meta: CheckpointMeta,
}

/// Loads a checkpoint into freshly initialised `model`/`ema` of the right architecture and a
/// fresh `optim`. Errors name the path: unreadable, corrupt, or a shape/parameter mismatch.
pub fn load<M: Module>(path: &Path, model: M, ema: M, optim: ModuleOptimizer) -> Result<Loaded<M>> {
    let s = read_sections(path)?;
    let apply = |what: &str, bytes: Vec<u8>, m: M| -> Result<M> {
        let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::checkpoint(path, format!("corrupt {what} record: {e}")))?;
        m.try_load_record(rec).map_err(|e| {
            Error::checkpoint(
                path,
                format!("{what} does not match this architecture: {e}"),
            )
        })
    };
    let model = apply("model", s.model, model)?;
    let ema = apply("EMA", s.ema, ema)?;
    let rec = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(s.optim))
        .map_err(|e| Error::checkpoint(path, format!("corrupt optimizer record: {e}")))?;
    Ok(Loaded {
        model,
        ema,
        optim: optim.load_record(rec),
        meta: s.meta,
    })
}

fn io_err(path: &Path, why: &str, source: std::io::Error) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        why: why.to_string(),
        source: Some(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::optim::AdamConfig;
    use burn::prelude::*;

    #[derive(Module, Debug)]
    struct Tiny {
        w: Param<Tensor<2>>,
    }

    fn tiny(rows: usize, fill: f32) -> Tiny {
        Tiny {
            w: Param::from_tensor(Tensor::full(
                [rows, 2],
                fill,
                &crate::gradcheck::f64_device(),
            )),
        }
    }

    fn meta() -> CheckpointMeta {
        CheckpointMeta {
            step: 5,
            seed: 1,
            config: serde_json::json!({"lr": 0.1}),
        }
    }

    #[test]
    fn round_trip_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        let m = tiny(3, 1.5);
        let p = dir.path().join(file_name(5));
        save(&p, &m, &tiny(3, 0.5), &AdamConfig::new().init(), &meta()).unwrap();
        save(
            &dir.path().join(file_name(12)),
            &m,
            &m,
            &AdamConfig::new().init(),
            &meta(),
        )
        .unwrap();
        assert_eq!(
            latest(dir.path()).unwrap().unwrap(),
            dir.path().join(file_name(12))
        );
        let l = load(&p, tiny(3, 0.0), tiny(3, 0.0), AdamConfig::new().init()).unwrap();
        assert_eq!(l.meta, meta());
        assert_eq!(l.model.w.id, m.w.id);
        let v = l
            .ema
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(v, vec![0.5; 6]);
        // no temp file left behind
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    /// See: issue 20. A derived `ema_decay` (`1 - 10/300` = 0.9666666666666667) read back
    /// one ulp off (0.9666666666666668) refused every resume after a kill. Metadata floats
    /// must come back bit for bit (serde_json's `float_roundtrip`).
    #[test]
    fn metadata_floats_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(file_name(1));
        let mut values: Vec<f64> = (1..3000u64)
            .map(crate::train::ema_decay_for_steps)
            .collect();
        values.extend([
            1.0 - 10.0 / 300.0,
            0.1 + 0.2,
            1e-4,
            5e-324,
            1.7976931348623157e308,
        ]);
        // A fixed pseudo-random sweep over bit patterns (finite values only).
        let mut z: u64 = 0x9E37_79B9_7F4A_7C15;
        while values.len() < 6000 {
            z = z
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = f64::from_bits(z);
            if v.is_finite() {
                values.push(v);
            }
        }
        let meta = CheckpointMeta {
            step: 1,
            seed: 0,
            config: serde_json::json!({ "values": values }),
        };
        let m = tiny(1, 0.0);
        save(&p, &m, &m, &AdamConfig::new().init(), &meta).unwrap();
        let back = read_meta(&p).unwrap();
        let read: Vec<u64> = back.config["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap().to_bits())
            .collect();
        let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(read, want);
        assert_eq!(back, meta);
    }

    #[test]
    fn corrupt_and_mismatched_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.emck");
        fs::write(&p, b"garbage").unwrap();
        let e = load(&p, tiny(3, 0.0), tiny(3, 0.0), AdamConfig::new().init())
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("x.emck") && e.to_string().contains("bad magic"),
            "{e}"
        );

        save(
            &p,
            &tiny(3, 1.0),
            &tiny(3, 1.0),
            &AdamConfig::new().init(),
            &meta(),
        )
        .unwrap();
        let e = load(&p, tiny(4, 0.0), tiny(4, 0.0), AdamConfig::new().init())
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not match"), "{e}");

        let good = fs::read(&p).unwrap();
        let mut bytes = good.clone();
        bytes.truncate(bytes.len() - 10);
        fs::write(&p, bytes).unwrap();
        let e = load(&p, tiny(3, 0.0), tiny(3, 0.0), AdamConfig::new().init())
            .err()
            .unwrap();
        assert!(e.to_string().contains("digest does not match"), "{e}");
        // One flipped bit anywhere is caught too.
        let mut bytes = good;
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        fs::write(&p, bytes).unwrap();
        let e = read_meta(&p).unwrap_err();
        assert!(e.to_string().contains("digest does not match"), "{e}");
    }

    /// See: issue 20. A truncated newest checkpoint is skipped: resume uses the previous good
    /// one instead of failing (or starting over).
    #[test]
    fn latest_skips_a_truncated_newest_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let m = tiny(2, 1.0);
        for step in [5, 10] {
            let meta = CheckpointMeta { step, ..meta() };
            save(
                &dir.path().join(file_name(step)),
                &m,
                &m,
                &AdamConfig::new().init(),
                &meta,
            )
            .unwrap();
        }
        let newest = dir.path().join(file_name(10));
        assert_eq!(latest(dir.path()).unwrap(), Some(newest.clone()));
        let bytes = fs::read(&newest).unwrap();
        fs::write(&newest, &bytes[..bytes.len() / 3]).unwrap();
        assert_eq!(
            latest(dir.path()).unwrap(),
            Some(dir.path().join(file_name(5)))
        );
        // Every checkpoint corrupt: an error naming the newest, not a silent fresh start.
        fs::write(dir.path().join(file_name(5)), b"EMCKPT02").unwrap();
        let err = latest(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&file_name(10)), "{err}");
        // No checkpoint at all is a fresh start.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(latest(empty.path()).unwrap(), None);
    }
}
