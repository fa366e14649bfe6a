//! Stage cache keys and completion records (cargo fingerprinting style): a key hashes the
//! stage kind, its canonical config, its input files' contents, its upstream stages' keys and
//! the workspace version ([`crate::VERSION`]); the record holding it is written last, after the stage succeeded, and
//! carries the SHA-256 of every output file, so a stage whose output was truncated or altered
//! afterwards is not taken for fresh.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
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
    field("version", crate::VERSION);
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
    /// Version of the program that ran it ([`crate::VERSION`]).
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

/// Write `bytes` to `path` atomically: into a temporary file `.<name>.<random>.tmp` in the
/// same directory (the name the runner's stale-temp-file cleanup knows), flushed and synced,
/// created with the mode a plain create gives (`0666` less the umask, not the temp file's
/// private `0600`), then renamed over `path`. A failed write leaves neither the temporary
/// file nor a partial `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{}: is a folder; give the path of a file to write",
            path.display()
        );
    }
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Applied at creation, so the umask narrows it as for any new file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // `path: <io error>`, the I/O error kept in the chain (see `runner::is_read_only`).
    let io = |p: &Path, e: std::io::Error| anyhow::Error::new(e).context(p.display().to_string());
    let tmp = builder.tempfile_in(&dir).map_err(|e| io(&dir, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        w.write_all(bytes)
            .and_then(|()| w.flush())
            .map_err(|e| io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| io(path, e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
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

    /// Keys are on disk in every finished run: a refactor must not change them (this one is
    /// the key of version 0.1.0; a new version changes it on purpose).
    #[test]
    fn key_is_stable() {
        let k = fingerprint(
            "toy2d.energy",
            &json!({"steps": 10, "lr": 0.001}),
            &[],
            &[("data".into(), Key("ab".into()))],
        )
        .unwrap();
        assert_eq!(crate::VERSION, "0.1.0");
        assert_eq!(
            k.0,
            "c9e4bf5aa060e1c73b13f93fb1d197b6b4e1def74f3757418f8dc3358f911e58"
        );
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

    #[cfg(unix)]
    #[test]
    fn write_atomic_gives_a_plain_create_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let f = dir.path().join("atomic");
        write_atomic(&f, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), mode(&plain));
    }

    #[test]
    fn write_atomic_refuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", write_atomic(dir.path(), b"x").unwrap_err());
        assert!(e.contains("is a folder"), "{e}");
    }
}
