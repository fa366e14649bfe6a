//! Stage cache keys and completion records (cargo fingerprinting style): a key hashes the
//! stage kind, its canonical config, its input files' contents, its upstream stages' keys and
//! the crate version; the record holding it is written last, after the stage succeeded, and
//! carries the SHA-256 of every output file, so a stage whose output was truncated or altered
//! afterwards is not taken for fresh.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name of the completion record inside a finished stage's directory.
pub const RECORD: &str = "stage.json";

/// A stage's cache key: hex SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key(pub String);

impl Key {
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file's contents, hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// JSON with object keys sorted at every level, so equal configs hash equally.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&map[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

/// The fingerprint of one stage run.
pub fn fingerprint(
    kind: &str,
    config: &serde_json::Value,
    inputs: &[PathBuf],
    upstream: &[(String, Key)],
) -> Result<Key> {
    let mut h = Sha256::new();
    let mut field = |tag: &str, value: &str| {
        h.update(tag.as_bytes());
        h.update([0u8]);
        h.update((value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    };
    field("version", env!("CARGO_PKG_VERSION"));
    field("kind", kind);
    field("config", &canonical_json(config));
    for path in inputs {
        field("input", &hash_file(path)?);
    }
    for (name, key) in upstream {
        field("upstream", name);
        field("key", &key.0);
    }
    Ok(Key(hex(&h.finalize())))
}

/// What a finished stage leaves behind, written last.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Stage name.
    pub stage: String,
    /// Stage kind.
    pub kind: String,
    /// The key it ran under.
    pub key: Key,
    /// emdesign version.
    pub version: String,
    /// Wall time of the run, seconds.
    pub wall_secs: f64,
    /// Headline numbers for the summary line, in order.
    pub headline: Vec<(String, String)>,
    /// Everything else the stage reported.
    pub metrics: serde_json::Value,
    /// SHA-256 (hex) of each output file, by path relative to the stage directory (`/`
    /// separated), the record itself excepted.
    pub outputs: BTreeMap<String, String>,
}

/// Read a stage directory's record, `None` if absent or unreadable (then the stage is stale).
pub fn read_record(dir: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(dir.join(RECORD)).ok()?;
    serde_json::from_str(&text).ok()
}

/// SHA-256 of every file below `dir` (recursively), the completion record excepted.
pub fn hash_outputs(dir: &Path) -> Result<BTreeMap<String, String>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if kind.is_dir() {
                walk(root, &path, out)?;
                continue;
            }
            let rel: Vec<String> = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let rel = rel.join("/");
            if rel != RECORD {
                out.insert(rel, hash_file(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Check a finished stage's output files against its record: `Err` names the first file
/// that is missing or whose contents changed.
pub fn verify_outputs(dir: &Path, record: &Record) -> std::result::Result<(), String> {
    for (rel, sum) in &record.outputs {
        let path = dir.join(rel);
        match hash_file(&path) {
            Ok(h) if &h == sum => {}
            Ok(_) => return Err(format!("{} was altered or truncated", path.display())),
            Err(_) => return Err(format!("{} is missing or unreadable", path.display())),
        }
    }
    Ok(())
}

/// Write `bytes` to `path` atomically through em-protein's one atomic-write helper (temp
/// file in the same directory, flushed, given the umask's normal mode, then renamed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    em_protein::io::write_atomic(path, |w| w.write_all(bytes))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_ignores_key_order_but_not_values() {
        let a = fingerprint("k", &json!({"a": 1, "b": {"c": 2, "d": 3}}), &[], &[]).unwrap();
        let b = fingerprint("k", &json!({"b": {"d": 3, "c": 2}, "a": 1}), &[], &[]).unwrap();
        let c = fingerprint("k", &json!({"a": 2, "b": {"c": 2, "d": 3}}), &[], &[]).unwrap();
        let d = fingerprint("other", &json!({"a": 1, "b": {"c": 2, "d": 3}}), &[], &[]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.0.len(), 64);
    }

    #[test]
    fn key_covers_input_contents_and_upstream_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.csv");
        std::fs::write(&f, "1,2\n").unwrap();
        let k1 = fingerprint("k", &json!({}), std::slice::from_ref(&f), &[]).unwrap();
        std::fs::write(&f, "1,3\n").unwrap();
        let k2 = fingerprint("k", &json!({}), std::slice::from_ref(&f), &[]).unwrap();
        assert_ne!(k1, k2);
        let up = fingerprint("k", &json!({}), &[], &[("data".into(), k1.clone())]).unwrap();
        let up2 = fingerprint("k", &json!({}), &[], &[("data".into(), k2)]).unwrap();
        assert_ne!(up, up2);
    }

    #[test]
    fn hash_file_matches_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("abc");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(
            hash_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn outputs_are_hashed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.csv"), "1,2\n").unwrap();
        std::fs::write(dir.path().join("sub/b.bin"), [0u8, 1, 2]).unwrap();
        std::fs::write(dir.path().join(RECORD), "{}").unwrap();
        let outputs = hash_outputs(dir.path()).unwrap();
        assert_eq!(outputs.keys().collect::<Vec<_>>(), ["a.csv", "sub/b.bin"]);
        let record = Record {
            stage: "s".into(),
            kind: "k".into(),
            key: Key("0".into()),
            version: "0".into(),
            wall_secs: 0.0,
            headline: vec![],
            metrics: json!({}),
            outputs,
        };
        assert_eq!(verify_outputs(dir.path(), &record), Ok(()));
        std::fs::write(dir.path().join("sub/b.bin"), [0u8, 1, 3]).unwrap();
        let e = verify_outputs(dir.path(), &record).unwrap_err();
        assert!(e.contains("b.bin was altered"), "{e}");
        std::fs::remove_file(dir.path().join("a.csv")).unwrap();
        let e = verify_outputs(dir.path(), &record).unwrap_err();
        assert!(e.contains("a.csv is missing"), "{e}");
    }

    #[test]
    fn write_atomic_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.json");
        write_atomic(&f, b"{}").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("r.json")]);
    }
}
