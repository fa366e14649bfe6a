//! An exclusive lock on a run directory for the time a runner works in it, so that two
//! `emdesign` processes never write the same stages at once (they would clobber each
//! other's staging directories). The lock is a `.lock` file holding the owner's pid; a lock
//! left by a process that no longer runs (killed) is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Held while a runner works in a run directory; removed on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` (which must exist), or fails naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(".lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = owner.filter(|&pid| running(pid)) {
                        bail!(
                            "run directory {} is in use by another emdesign process (pid {pid}); \
                             wait for it to finish or use another run directory",
                            dir.display()
                        );
                    }
                    // Stale (its process is gone) or half-written: take it over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!("cannot take the lock {}", path.display())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` runs. Where `/proc` is missing the answer is "no", so a stale lock
/// never blocks (the lock is then only as good as that guess).
fn running(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let e = format!("{:#}", RunLock::acquire(dir.path()).unwrap_err());
        assert!(e.contains("in use by another emdesign process"), "{e}");
        drop(lock);
        assert!(!dir.path().join(".lock").exists());
        // A pid that cannot be running (above Linux's pid_max) marks a stale lock.
        std::fs::write(dir.path().join(".lock"), "4294967295").unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".lock")).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
    }
}
